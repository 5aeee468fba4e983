"""The ``baocao`` command: a thin shell over the library (parse options, call the API, render, exit code)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .round import Round, load_round
from .yamlio import ConfigError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _load_round(path: str | None) -> Round:
    try:
        return load_round(path)
    except ConfigError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(EXIT_USAGE)


round_option = click.option(
    "--round",
    "round_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Tệp round.yaml của đợt báo cáo (mặc định: đợt mẫu Bắc Giang 2024).",
)


class _Group(click.Group):
    def main(self, *args, **kwargs):  # click's usage errors exit 2 already; keep messages Vietnamese-friendly
        return super().main(*args, **kwargs)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="baocao", message="baocao %(version)s")
def main() -> None:
    """baocao – tạo biểu mẫu, kiểm tra và tổng hợp báo cáo Excel của các đơn vị."""


@main.command()
@round_option
@click.option(
    "-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Thư mục ghi biểu mẫu."
)
def templates(round_path: str | None, out_dir: str) -> None:
    """Tạo biểu mẫu Excel cho từng đơn vị phải nộp báo cáo."""
    from .render import write_templates

    rnd = _load_round(round_path)
    try:
        paths = write_templates(rnd, out_dir)
    except OSError as exc:
        click.echo(f"Không ghi được vào thư mục {out_dir}: {exc.strerror or exc}. Hãy chọn thư mục khác.", err=True)
        sys.exit(EXIT_USAGE)
    for unit, path in zip(rnd.units_owing(), paths):
        click.echo(f"✔ {path}  ({unit.name}: {', '.join(unit.forms)})")
    skipped = [u for u in rnd.units if not u.forms]
    for unit in skipped:
        click.echo(f"– {unit.name} ({unit.code}) không phải nộp biểu nào trong đợt này.")
    click.echo(f"Đã tạo {len(paths)} biểu mẫu trong {Path(out_dir)}.")
