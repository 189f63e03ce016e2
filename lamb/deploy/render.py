"""Rich rendering of a ``DeployReport`` for the CLI (the library returns data; this draws it)."""

from __future__ import annotations

from lamb.deploy.report import DeployReport
from lamb.markup import plain
from lamb.package.budget import MiB


def render(report: DeployReport, verbose: bool = False) -> list:
    from rich.table import Table
    from rich.text import Text

    plan = report.plan
    out: list = []
    what = f"{plan.runtime} on {plan.arch}" if plan.runtime else f"container image on {plan.arch}"
    if report.planned_only:
        out.append(f"[bold]plan[/] for [bold]{plain(report.function_name)}[/] in {plain(report.region)}: {plain(report.artifact.name)} ({what}), "
                   f"{plan.settings.memory_mb:,} MB, {plan.settings.timeout_s} s; nothing was changed")
        if plan.prerequisites:
            out.append("[bold]first[/], build and push the image:")
            out += [Text("   " + command) for command in plan.prerequisites]
        for i, (call, commands) in enumerate(zip(plan.calls, report.commands), 1):
            out.append(f"[bold]{i}.[/] {plain(call.purpose)}")
            out += [Text("   " + command) for command in commands]  # plain text: commands hold brackets Rich would read as markup
    else:
        out.append(f"[bold]{plain(report.function_name)}[/] {report.action} in {plain(report.region)}: {plain(report.artifact.name)} ({what})")
        table = Table(show_header=False)
        table.add_column("what", overflow="fold")
        table.add_column("value", overflow="fold")
        table.add_row("function", plain(report.function_arn or "-"))
        table.add_row("version", f"{report.version} ({'published' if report.published else 'unchanged: nothing new to publish'})")
        if report.alias:
            table.add_row("alias", plain(f"{report.alias} -> {report.version} ({report.alias_action})"))
        if report.url:
            added = ", ".join(report.permissions_added) or "already in place"
            table.add_row("URL", plain(f"{report.url} ({report.url_action}; permissions: {added})" if plan.url == "public" else f"{report.url} ({report.url_action}, AWS_IAM)"))
        elif report.url_action == "removed":
            table.add_row("URL", "removed (--url none)")
        if report.permissions_removed:
            table.add_row("public permissions", plain(f"removed: {', '.join(report.permissions_removed)}"))
        if report.reserved_concurrency is not None:
            table.add_row("concurrency", f"{report.reserved_concurrency} reserved")
        sent = f"{report.uploaded_bytes / MiB:.1f} MB sent" if report.uploaded_bytes else "nothing sent"
        table.add_row("upload", plain(f"{report.upload}" + (f" {report.s3_uri}" if report.s3_uri else "") + f" ({sent})"))
        table.add_row("role", plain((report.role_arn or "-") + (" (created)" if report.role_created else "")))
        table.add_row("CodeSha256", f"{report.deployed_code_sha256} == the artifact's" if report.deployed_code_sha256 else "-")
        table.add_row("memory", plain(f"{plan.settings.memory_mb:,} MB from {plan.settings.memory_source}"))
        table.add_row("timeout", plain(f"{plan.settings.timeout_s} s from {plan.settings.timeout_source}"))
        if report.smoke is not None:
            table.add_row("smoke test", "passed" if report.smoke.passed else f"[bold red]failed[/]: {plain(report.smoke.reason)}")
        else:
            table.add_row("smoke test", "skipped (--no-smoke)")
        out.append(table)
        if report.record_path:
            out.append(f"[dim]recorded in {plain(report.record_path)}; CloudFormation: {plain(report.template_path)}[/]")
    if report.learned:
        out.append(f"[bold]learned:[/] {plain(report.learned)}")
    for note in report.notes:
        out.append(f"[dim]note:[/] {plain(note)}")
    return out
