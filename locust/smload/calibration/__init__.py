"""Calibration: the pure knee search (``search``), its Locust load shape (``shape``), its options and
the autoscaling policies it recommends (``policies``)."""
