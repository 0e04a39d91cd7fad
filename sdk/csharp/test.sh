#!/bin/sh
# Builds the C# SDK and runs its NUnit tests. The end-to-end tests need a
# tandem binary: TANDEM_BIN=/path/to/tandem (go build -o /tmp/tandem
# ./cmd/tandem); the conformance driver needs the harness server:
# TANDEM_HARNESS_BIN=/path/to/tandem-harness (go build -o
# /tmp/tandem-harness ./conformance/cmd/harness). Without mono or a binary
# they are skipped, except under CI=true, where they fail. Extra arguments
# go to nunit-console (such as -run:Tandem.Tests.CodecTests).
set -eu
cd "$(dirname "$0")"
if ! command -v mono >/dev/null || ! command -v mcs >/dev/null || ! command -v nunit-console >/dev/null; then
	echo "test.sh: mono, mcs or nunit-console is missing (apt-get install mono-complete nunit-console libnewtonsoft-json-cil-dev)" >&2
	[ "${CI:-}" = true ] && exit 1
	echo "test.sh: skipped" >&2
	exit 0
fi
if [ -z "${TANDEM_BIN:-}" ] && [ "${CI:-}" = true ]; then
	echo "test.sh: TANDEM_BIN is not set (CI=true)" >&2
	exit 1
fi
if [ -z "${TANDEM_HARNESS_BIN:-}" ] && [ "${CI:-}" = true ]; then
	echo "test.sh: TANDEM_HARNESS_BIN is not set (CI=true)" >&2
	exit 1
fi
./build.sh
cd bin
# nunit-console exits with the number of failed tests; -nologo keeps the output short.
nunit-console -nologo -noshadow -labels Tandem.Tests.dll "$@"
