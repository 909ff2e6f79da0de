# shellcheck shell=bash
# Independent clients of the queue features' interop tests (docs/queues.md),
# sourced by scripts/test.sh (which defines apt_install):
#
#   - Debian's python3-boto3 (query protocol), run by /usr/bin/python3:
#     embedded-broker/sqsapi/testdata/interop/boto3_queues.py
#   - Debian's awscli (query protocol), /usr/bin/aws: the commands of
#     docs/queues.md, run as written by TestAWSCLIDocsCommands
#
# The RabbitMQ side (amqp091-go against the local RabbitMQ) needs nothing
# beyond what test.sh starts.
apt_install awscli python3-boto3
export SQS_AWS_CLI=/usr/bin/aws SQS_PYTHON=/usr/bin/python3
log "queues: $(/usr/bin/python3 -c 'import boto3, botocore; print("boto3", boto3.__version__, "botocore", botocore.__version__)' 2>&1), $(/usr/bin/aws --version 2>&1)"
