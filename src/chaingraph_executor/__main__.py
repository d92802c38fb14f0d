from __future__ import annotations

from chaingraph_executor.cli import main

main()
