# shellcheck shell=bash
# Independent SQS clients for embedded-broker/sqsapi's interop tests
# (sourced by scripts/test.sh, which defines apt_install and npm_install):
#
#   - Debian's awscli (2.9, query protocol): /usr/bin/aws
#   - Debian's python3-boto3 (1.26 / botocore 1.29, query protocol), run by /usr/bin/python3
#   - the AWS SDK for JavaScript v3, @aws-sdk/client-sqs from npm (JSON 1.0 protocol)
#
# The npm package is installed with no version (the AWS packages are not all
# served at one version here); what was installed is recorded in
# .tools/sqs-js/package.json and package-lock.json, and later runs install
# exactly that lock with npm ci.
apt_install awscli python3-boto3

export SQS_JS_DIR="$root/.tools/sqs-js"
if [ ! -f "$SQS_JS_DIR/node_modules/@aws-sdk/client-sqs/package.json" ]; then
	if [ -f "$SQS_JS_DIR/package-lock.json" ]; then
		log "npm: installing the recorded @aws-sdk/client-sqs lock into $SQS_JS_DIR"
		(cd "$SQS_JS_DIR" && npm ci --silent --no-audit --no-fund >/dev/null)
	else
		npm_install "$SQS_JS_DIR" @aws-sdk/client-sqs
	fi
fi
export SQS_AWS_CLI=/usr/bin/aws SQS_PYTHON=/usr/bin/python3
