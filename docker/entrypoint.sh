#!/bin/sh
# One image, every role (run under dumb-init, which forwards signals and reaps children):
#   IMAGE [locust options...]          locust with LOCUST_LOCUSTFILE (the bundled /opt/smload/locustfile.py
#                                      unless -f/--locustfile or LOCUST_LOCUSTFILE says otherwise)
#   IMAGE emulator|calibrate|k8s ...   smload <command> ...
#   IMAGE locust ... | smload ...      the same, spelled out
#   IMAGE <any other command>          that command (sh, python, ...), for debugging
set -eu

# Host AWS config mounted read-only at /mnt/aws: use a private writable copy, so that botocore can
# refresh an SSO token (it writes ~/.aws/sso/cache) while the host's files stay untouched.
if [ -d /mnt/aws ] && [ -z "${AWS_CONFIG_FILE:-}${AWS_SHARED_CREDENTIALS_FILE:-}" ]; then
    export HOME=/tmp/smload-home
    mkdir -p "$HOME"
    if ! cp -R /mnt/aws "$HOME/.aws" 2>/tmp/smload-aws-copy.err; then
        echo "smload: cannot read the AWS config mounted at /mnt/aws as uid $(id -u): $(head -n 1 /tmp/smload-aws-copy.err)." \
            "Run the container as the files' owner (docker run --user \"\$(id -u):\$(id -g)\";" \
            "docker compose: SMLOAD_UID=\$(id -u) SMLOAD_GID=\$(id -g))." >&2
        exit 2
    fi
    chmod -R u+w "$HOME/.aws"
fi

case "${1:-}" in
    emulator | calibrate | k8s) exec smload "$@" ;;
    smload | locust) exec "$@" ;;
    "" | -*) exec locust "$@" ;;
    *) exec "$@" ;;
esac
