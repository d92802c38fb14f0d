"""The settings table in docs/deployment.md lists every setting with its real default."""

from __future__ import annotations

from pathlib import Path

from chaingraph_executor.settings import Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "deployment.md"


def test_every_setting_is_documented_with_its_default() -> None:
    text = DOC.read_text()
    for name, field in Settings.model_fields.items():
        default = field.default if field.default_factory is None else field.default_factory()
        shown = "(see meaning)" if default is None else str(default)
        row = f"| `CHAINGRAPH_{name.upper()}` | `{shown}` |"
        assert row in text, f"docs/deployment.md lacks or misstates {row}"
