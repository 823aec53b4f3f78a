"""``smload autoscaling verify`` (placeholder until open loop lands)."""


def add_parser(sub, add_common) -> None:
    pass


def main(args) -> int:
    return 2
