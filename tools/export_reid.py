#!/usr/bin/env python
"""Export a trained re-ID model to ONNX (dynamic batch) or TorchScript, checked against PyTorch.

Example::

    python tools/export_reid.py --checkpoint runs/00003-reid/checkpoints/model.pt --format onnx
    python tools/export_reid.py --checkpoint runs/00003-reid --format torchscript --out reid.torchscript.pt
"""

import sys

from reid_stargan.cli.export_reid import cli

if __name__ == "__main__":
    sys.exit(cli())
