"""Writes the template `sam local` serves: template.yaml with each function's
code in <LogicalId>/ beside it (the layout `sam build` makes) and the given
architecture, so that a debug build for the host runs without QEMU. Prints
one line per function, "<LogicalId> <binary>", for the caller to lay out.

    python template.py TEMPLATE OUT_DIR ARCH

Run with the SAM CLI's own Python (.venv-deploy), whose YAML helper keeps the
template's intrinsic functions (!Ref, !If, ...) as they are.
"""
import sys
from pathlib import Path

from samcli.yamlhelper import yaml_dump, yaml_parse

source, out_dir, arch = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
template = yaml_parse(Path(source).read_text())
template["Globals"]["Function"]["Architectures"] = [arch]
for name, resource in template["Resources"].items():
    if resource["Type"] == "AWS::Serverless::Function":
        # Built already: nothing left for SAM to build.
        binary = resource.pop("Metadata")["BuildProperties"]["Binary"]
        resource["Properties"]["CodeUri"] = name
        print(name, binary)
out_dir.mkdir(parents=True, exist_ok=True)
(out_dir / "template.yaml").write_text(yaml_dump(template))
