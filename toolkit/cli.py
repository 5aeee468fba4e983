"""The ``baocao`` command: a thin shell over the library (parse options, call the API, render, exit code)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import cli_text
from .fsutil import os_reason
from .round import Round, load_round
from .yamlio import ConfigError

cli_text.install()  # click's own texts in Vietnamese, before any option below is declared

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _load_round(path: str | None, inbox: str | None = None) -> Round:
    """The round of ``--round``; without it, the ``round.yaml`` beside the inbox (``dot/round.yaml`` for
    ``dot/inbox``, as ``baocao serve`` lays them out), else the shipped example round, said on stderr."""
    if path is None and inbox is not None:
        beside = Path(inbox).resolve().parent / "round.yaml"
        if beside.is_file():
            path = str(beside)
        else:
            click.echo(
                f"Không có --round và không thấy {beside}: dùng đợt mẫu Bắc Giang 2024. Hãy chỉ rõ tệp đợt báo cáo "
                "bằng --round round.yaml.",
                err=True,
            )
    try:
        return load_round(path)
    except ConfigError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(EXIT_USAGE)


round_option = click.option(
    "--round",
    "round_path",
    type=click.Path(dir_okay=False),
    metavar="TỆP",
    default=None,
    help="Tệp round.yaml của đợt báo cáo (mặc định: round.yaml cạnh hộp thư, nếu có; nếu không: đợt mẫu Bắc "
    "Giang 2024).",
)


class _Command(click.Command):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("options_metavar", "[TÙY_CHỌN]")
        super().__init__(*args, **kwargs)


class _Group(click.Group):
    command_class = _Command

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("options_metavar", "[TÙY_CHỌN]")
        kwargs.setdefault("subcommand_metavar", "LỆNH [THAM_SỐ]...")
        super().__init__(*args, **kwargs)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="baocao", message="baocao %(version)s")
def main() -> None:
    """baocao – tạo biểu mẫu, kiểm tra và tổng hợp báo cáo Excel của các đơn vị."""


@main.command()
@round_option
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    metavar="THƯ_MỤC",
    help="Thư mục ghi biểu mẫu.",
)
def templates(round_path: str | None, out_dir: str) -> None:
    """Tạo biểu mẫu Excel cho từng đơn vị phải nộp báo cáo."""
    from .render import write_templates

    rnd = _load_round(round_path)
    try:
        paths = write_templates(rnd, out_dir)
    except OSError as exc:
        click.echo(f"Không ghi được vào thư mục {out_dir}: {os_reason(exc)}. Hãy chọn thư mục khác.", err=True)
        sys.exit(EXIT_USAGE)
    for unit, path in zip(rnd.units_owing(), paths):
        click.echo(f"✔ {path}  ({unit.name}: {', '.join(unit.forms)})")
    skipped = [u for u in rnd.units if not u.forms]
    for unit in skipped:
        click.echo(f"– {unit.name} ({unit.code}) không phải nộp biểu nào trong đợt này.")
    click.echo(f"Đã tạo {len(paths)} biểu mẫu trong {Path(out_dir)}.")


def _progress(total: int):
    """A progress bar on the terminal when there are many files (none when output is redirected)."""
    import contextlib

    if total < 20 or not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.progress import Progress

    return Progress(transient=True, console=__import__("rich.console").console.Console(stderr=True))


def render_report(report, verbose: bool = True) -> str:
    """Console text: one line per file, then its findings, readable by a person who is not technical."""
    lines = []
    for s in report.submissions:
        who = f"{s.unit_name} ({s.unit_code})" if s.unit_name else (s.unit_code or "không rõ đơn vị")
        if s.valid and not s.warnings:
            status = "✔ hợp lệ"
        elif s.valid:
            status = f"✔ hợp lệ, {len(s.warnings)} cảnh báo"
        else:
            status = f"✖ {len(s.errors)} lỗi, {len(s.warnings)} cảnh báo"
        if s.superseded_by:
            status += " (không dùng: đã có tệp gửi sau)"
        lines.append(f"{status} – {s.path} – {who}")
    if verbose:
        for s in report.submissions:
            if not s.findings:
                continue
            lines.append("")
            lines.append(f"{s.path}:")
            for f in s.findings:
                mark = "Lỗi" if f.severity == "error" else "Cảnh báo"
                lines.append(f"  {mark} [{f.code}] {f.message}")
    summ = report.summary()
    lines.append("")
    lines.append(
        f"Tổng cộng: {summ['files']} tệp, {summ['valid']} hợp lệ, {summ['invalid']} không hợp lệ; "
        f"{summ['errors']} lỗi, {summ['warnings']} cảnh báo."
    )
    return "\n".join(lines)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(), metavar="TỆP_HOẶC_THƯ_MỤC...")
@round_option
@click.option("--json", "as_json", is_flag=True, help="In kết quả dạng JSON.")
@click.option(
    "--annotate",
    "annotate_dir",
    type=click.Path(file_okay=False),
    metavar="THƯ_MỤC",
    default=None,
    help="Ghi bản sao có tô màu và chú thích từng lỗi vào thư mục này.",
)
def validate(paths: tuple[str, ...], round_path: str | None, as_json: bool, annotate_dir: str | None) -> None:
    """Kiểm tra các tệp báo cáo gửi về (tệp hoặc thư mục)."""
    import json

    from .validate import collect_files, validate_paths

    rnd = _load_round(round_path)
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        click.echo(f"Không tìm thấy: {', '.join(missing)}. Hãy kiểm tra lại đường dẫn.", err=True)
        sys.exit(EXIT_USAGE)
    if annotate_dir:
        from .pipeline import inside

        within = [p for p in paths if Path(p).is_dir() and inside(annotate_dir, p)]
        if within:
            click.echo(
                f"Không ghi bản sao có chú thích vào {annotate_dir}: thư mục này nằm trong thư mục đang kiểm tra "
                f"{within[0]}, lần sau các bản sao sẽ bị đọc như tệp gửi về. Hãy chọn một thư mục khác (--annotate).",
                err=True,
            )
            sys.exit(EXIT_USAGE)
    files = collect_files(paths)
    with _progress(len(files)) as bar:
        task = bar.add_task("Đang kiểm tra", total=len(files)) if bar else None
        report = validate_paths(paths, rnd, progress=(lambda _p: bar.advance(task)) if bar else None)
    written = []
    if annotate_dir:
        from .annotate import write_annotated_copies

        try:
            written = write_annotated_copies(report.submissions, annotate_dir)
        except OSError as exc:
            click.echo(
                f"Không ghi được bản sao vào {annotate_dir}: {os_reason(exc)}. Hãy chọn thư mục khác (--annotate).",
                err=True,
            )
            sys.exit(EXIT_USAGE)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_report(report))
        if written:
            click.echo(f"Đã ghi {len(written)} bản sao có chú thích vào {annotate_dir}.")
    sys.exit(report.exit_code)


STATE_TEXT = {
    "ok": "✔ đúng hạn, hợp lệ",
    "late": "⚠ nộp muộn, hợp lệ",
    "invalid": "✖ có lỗi, chưa tổng hợp",
    "missing": "✖ chưa nộp",
    "not-owed": "– không phải nộp",
}


def render_status(rows) -> str:
    """One line per unit: code, name, state, file and when it arrived."""
    lines = []
    for r in rows:
        when = f", nhận {r.received:%H:%M %d/%m/%Y}" if r.received else ""
        counts = f" ({r.errors} lỗi, {r.warnings} cảnh báo)" if r.file else ""
        file = f" – {Path(r.file).name}{when}{counts}" if r.file else ""
        lines.append(f"{r.unit_code:>5}  {r.unit_name:<24} {STATE_TEXT.get(r.state, r.state)}{file}")
    return "\n".join(lines)


registry_option = click.option(
    "--registry",
    "registry_path",
    type=click.Path(dir_okay=False),
    metavar="TỆP",
    default=None,
    help="Tệp sổ theo dõi SQLite (mặc định: cạnh thư mục hộp thư, <tên hộp thư>.baocao.sqlite).",
)


@main.command()
@click.argument("inbox", type=click.Path(file_okay=False), metavar="HỘP_THƯ")
@round_option
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="TỆP",
    help="Tệp tổng hợp .xlsx.",
)
@registry_option
@click.option(
    "--annotate",
    "annotate_dir",
    type=click.Path(file_okay=False),
    metavar="THƯ_MỤC",
    default=None,
    help="Ghi bản sao có chú thích của các tệp có lỗi hoặc cảnh báo vào thư mục này.",
)
@click.option("--json", "as_json", is_flag=True, help="In kết quả dạng JSON.")
def consolidate(inbox, round_path, output, registry_path, annotate_dir, as_json) -> None:
    """Kiểm tra mọi tệp trong hộp thư và tổng hợp thành báo cáo của tỉnh."""

    from .pipeline import OutputError, consolidate_inbox
    from .registry import RegistryError

    if not Path(inbox).is_dir():
        click.echo(f"Không tìm thấy thư mục hộp thư {inbox}. Hãy kiểm tra lại đường dẫn.", err=True)
        sys.exit(EXIT_USAGE)
    rnd = _load_round(round_path, inbox)
    try:
        run = consolidate_inbox(inbox, rnd, output, registry_path, annotate_dir)
    except (OutputError, RegistryError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    _print_run(run, rnd, as_json)


def _print_run(run, rnd, as_json: bool) -> None:
    import json

    rows = run.status
    if as_json:
        doc = run.report.to_dict()
        doc["summary_workbook"] = str(run.summary)
        doc["registry"] = str(run.registry)
        doc["included"] = {f: ft.units for f, ft in run.consolidation.forms.items()}
        doc["units"] = [r.to_dict() for r in rows]
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
        return
    click.echo(render_status(rows))
    strangers = [s for s in run.report.submissions if not (s.unit_code and rnd.unit(s.unit_code))]
    if strangers:
        click.echo(
            f"Tệp không thuộc đơn vị nào của đợt này ({len(strangers)}): {', '.join(s.name for s in strangers)}. "
            "Xem lý do ở trang “Lỗi và cảnh báo” của bảng tổng hợp."
        )
    click.echo("")
    for form_id, ft in run.consolidation.forms.items():
        click.echo(
            f"{form_id}: tổng hợp từ {len(ft.units)} đơn vị"
            + (f" ({', '.join(ft.units)})" if ft.units else "")
            + (f"; chưa tính: {', '.join(f'{c} ({why})' for c, why in ft.excluded.items())}" if ft.excluded else "")
        )
    click.echo(f"Đã ghi bảng tổng hợp: {run.summary}")
    if run.annotated:
        click.echo(f"Bản sao có chú thích để gửi lại đơn vị ({len(run.annotated)} tệp): {run.annotated[0].parent}")
    click.echo(f"Sổ theo dõi: {run.registry}")


@main.command()
@click.argument("inbox", type=click.Path(file_okay=False), metavar="HỘP_THƯ")
@round_option
@registry_option
@click.option("--json", "as_json", is_flag=True, help="In kết quả dạng JSON.")
def status(inbox, round_path, registry_path, as_json) -> None:
    """Tình hình nộp báo cáo theo sổ theo dõi: ai đã nộp, đúng hạn hay muộn, hợp lệ hay không, ai còn thiếu."""
    import json

    from .registry import Registry, RegistryError, default_registry_path, status_json
    from .registry import status as status_rows

    rnd = _load_round(round_path, inbox)
    path = Path(registry_path) if registry_path else default_registry_path(inbox)
    if not path.exists():
        click.echo(
            f"Chưa có sổ theo dõi {path}: chưa chạy tổng hợp lần nào. Hãy chạy "
            f"“baocao consolidate {inbox} -o tong-hop.xlsx” trước.",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    try:
        with Registry.open(path, readonly=True) as reg:
            if as_json:
                click.echo(json.dumps(status_json(rnd, reg), ensure_ascii=False, indent=2, default=str))
            else:
                click.echo(render_status(status_rows(rnd, reg)))
    except RegistryError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)


@main.command()
@click.argument("out", required=False, default="baocao-demo", type=click.Path(file_okay=False), metavar="[THƯ_MỤC]")
def demo(out: str) -> None:
    """Chạy trọn chu trình trên đợt mẫu Bắc Giang 2024: biểu mẫu, kiểm tra, bản sao chú thích, tổng hợp."""
    from .pipeline import OutputError, demo_paths, run_demo
    from .registry import RegistryError
    from .round import load_round

    paths = demo_paths(out)
    try:
        run = run_demo(out)
    except (OutputError, RegistryError, OSError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    rnd = load_round(paths["round"])
    click.echo(f"Đợt báo cáo: {rnd.title} (hạn nộp {rnd.deadline:%d/%m/%Y})")
    click.echo(f"Biểu mẫu cho các đơn vị: {paths['templates']}")
    click.echo(f"Hộp thư mẫu: {paths['inbox']}")
    click.echo("")
    _print_run(run, rnd, False)


# ------------------------------------------------------------------------------------------ web server

inbox_option = click.option(
    "--inbox",
    "inbox",
    type=click.Path(file_okay=False),
    metavar="THƯ_MỤC",
    default=None,
    help="Thư mục hộp thư nhận tệp tải lên (mặc định: thư mục inbox cạnh round.yaml; với đợt mẫu: ./hop-thu).",
)


def _server_paths(round_path: str | None, inbox: str | None, registry_path: str | None) -> tuple[Path, Path]:
    from .registry import default_registry_path
    from .server import default_inbox

    box = Path(inbox) if inbox else default_inbox(round_path)
    return box, Path(registry_path) if registry_path else default_registry_path(box)


@main.command()
@round_option
@inbox_option
@registry_option
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ĐỊA_CHỈ", help="Địa chỉ lắng nghe.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), metavar="SỐ", help="Cổng.")
@click.option(
    "--password",
    envvar="BAOCAO_PASSWORD",
    default=None,
    metavar="MẬT_KHẨU",
    help="Mật khẩu trang của Sở (hoặc biến môi trường BAOCAO_PASSWORD; nếu không có sẽ tạo ngẫu nhiên và in ra).",
)
@click.option(
    "--max-upload-mb",
    default=10,
    show_default=True,
    type=click.IntRange(1, 200),
    metavar="MB",
    help="Dung lượng tối đa mỗi tệp.",
)
@click.option(
    "--proxy-headers",
    is_flag=True,
    help="Tin tiêu đề X-Forwarded-* từ proxy ngược (nginx, Caddy) ở --forwarded-allow-ips.",
)
@click.option(
    "--forwarded-allow-ips", default="127.0.0.1", show_default=True, metavar="ĐỊA_CHỈ", help="Địa chỉ proxy được tin."
)
def serve(round_path, inbox, registry_path, host, port, password, max_upload_mb, proxy_headers, forwarded_allow_ips):
    """Chạy máy chủ web: trang nộp báo cáo của từng đơn vị và trang theo dõi của Sở."""
    import secrets

    from . import server

    missing = server.missing_modules()
    if missing:
        click.echo(server.INSTALL_HINT + f" (Thiếu: {', '.join(missing)}.)", err=True)
        sys.exit(EXIT_USAGE)
    rnd = _load_round(round_path)
    box, reg = _server_paths(round_path, inbox, registry_path)
    generated = not password
    password = password or secrets.token_urlsafe(12)
    try:
        box.mkdir(parents=True, exist_ok=True)
        app = server.create_app(rnd, box, reg, password, max_upload_bytes=max_upload_mb * 1024 * 1024)
    except (OSError, ValueError) as exc:
        click.echo(
            f"Không khởi động được máy chủ: {exc}. Hãy kiểm tra thư mục hộp thư (--inbox) và quyền ghi vào đó.",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    click.echo(f"Đợt báo cáo: {rnd.title} (hạn nộp {rnd.deadline:%d/%m/%Y})")
    click.echo(f"Hộp thư: {box}")
    click.echo(f"Sổ theo dõi: {reg}")
    click.echo(f"Trang của Sở: http://{host}:{port}/tinh")
    if generated:
        click.echo(f"Mật khẩu trang của Sở (chỉ hiện một lần, hãy ghi lại): {password}")
    click.echo("Đường dẫn của các đơn vị: chạy “baocao links” với cùng --round/--inbox.")
    server.serve(app, host=host, port=port, proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips)


@main.command()
@round_option
@inbox_option
@registry_option
@click.option(
    "--base-url", default=None, metavar="URL", help="Địa chỉ máy chủ trong đường dẫn (mặc định: server_url của đợt)."
)
@click.option(
    "--unit", "unit_codes", multiple=True, metavar="MÃ", help="Chỉ cấp đường dẫn cho đơn vị này (có thể lặp lại)."
)
@click.option(
    "--revoke", "revoke_codes", multiple=True, metavar="MÃ", help="Thu hồi mọi đường dẫn của đơn vị có mã này."
)
@click.option("--rotate", is_flag=True, help="Thu hồi các đường dẫn cũ rồi cấp đường dẫn mới.")
def links(round_path, inbox, registry_path, base_url, unit_codes, revoke_codes, rotate):
    """In đường dẫn riêng (bí mật) để mỗi đơn vị nộp báo cáo: mã, tên, đường dẫn, cách nhau bằng dấu tab."""
    from .registry import RegistryError
    from .server.tokens import TokenStore, UnknownUnit

    rnd = _load_round(round_path)
    _, reg = _server_paths(round_path, inbox, registry_path)
    store = TokenStore(reg)
    base = base_url or rnd.server_url or "http://127.0.0.1:8000"
    try:
        if revoke_codes:
            for code in revoke_codes:
                n = store.revoke(rnd, code)
                click.echo(f"Đã thu hồi {n} đường dẫn của đơn vị {code}.", err=True)
            if not unit_codes and not rotate:
                return
        before = store.active_counts(rnd)
        issued = store.issue(rnd, unit_codes or None, rotate=rotate)
    except UnknownUnit as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    except (RegistryError, OSError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    for t in issued:
        click.echo(f"{t.unit.code}\t{t.unit.name}\t{t.url(base)}")
    kept = sum(before.get(t.unit.code, 0) for t in issued)
    click.echo(f"Đã cấp {len(issued)} đường dẫn (chỉ in một lần; sổ theo dõi chỉ lưu mã băm).", err=True)
    if rotate:
        click.echo("Các đường dẫn cũ của các đơn vị này đã bị thu hồi.", err=True)
    elif kept:
        click.echo(
            f"Lưu ý: {kept} đường dẫn cấp trước đây vẫn dùng được. Dùng --rotate để thu hồi chúng, hoặc "
            "--revoke MÃ để thu hồi của một đơn vị.",
            err=True,
        )


if __name__ == "__main__":  # python -m toolkit.cli
    main()
