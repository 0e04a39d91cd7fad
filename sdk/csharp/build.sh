#!/bin/sh
# Builds the C# SDK with Debian's mono (mcs): the core (bin/Tandem.dll), the
# Unity adapter against the UnityEngine stub (bin/Tandem.Unity.dll), and the
# NUnit 2.6 tests (bin/Tandem.Tests.dll). No NuGet: Newtonsoft.Json and NUnit
# come from Debian packages.
set -eu
cd "$(dirname "$0")"
NEWTONSOFT=${NEWTONSOFT:-/usr/lib/cli/Newtonsoft.Json-5.0/Newtonsoft.Json.dll}
NUNIT=${NUNIT:-/usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll}
for f in "$NEWTONSOFT" "$NUNIT"; do
	[ -f "$f" ] || { echo "build.sh: $f is missing (apt-get install mono-complete libnewtonsoft-json-cil-dev libnunit-cil-dev nunit-console)" >&2; exit 1; }
done
command -v mcs >/dev/null || { echo "build.sh: mcs is missing (apt-get install mono-complete)" >&2; exit 1; }
mkdir -p bin
MCS="mcs -langversion:7.2 -warnaserror+ -nologo"
$MCS -target:library -out:bin/Tandem.dll -doc:bin/Tandem.xml -nowarn:1591 \
	-r:"$NEWTONSOFT" -r:System.Numerics -r:System.Net.Http \
	$(find src/Tandem -name '*.cs' | sort)
$MCS -target:library -out:bin/UnityEngine.dll $(find tests/UnityStub -name '*.cs' | sort)
$MCS -target:library -out:bin/Tandem.Unity.dll -r:bin/Tandem.dll -r:bin/UnityEngine.dll \
	$(find src/Tandem.Unity -name '*.cs' | sort)
$MCS -target:library -out:bin/Tandem.Tests.dll -nowarn:1591 \
	-r:bin/Tandem.dll -r:bin/Tandem.Unity.dll -r:bin/UnityEngine.dll -r:"$NEWTONSOFT" -r:"$NUNIT" \
	-r:System.Numerics -r:System.Net.Http \
	$(find tests -maxdepth 1 -name '*.cs' | sort)
cp "$NEWTONSOFT" "$NUNIT" bin/
