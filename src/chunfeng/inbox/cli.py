"""`chunfeng inbox …`: the channels a unit is reached through, and sending what is pending."""

from __future__ import annotations

import typer

from chunfeng.channels import ChannelRules
from chunfeng.cli_support import actor, console, database, settings
from chunfeng.inbox import services

app = typer.Typer(help="消息与外部通知通道", no_args_is_help=True)


@app.command("add-channel")
def add_channel(unit: str, url: str, label: str = typer.Option("", help="a name for the channel")):
    """Reach UNIT also through an Apprise URL (mailto://, dingtalk://, wecombot://, feishu://, json://…)."""
    db = database()
    with db.write() as session:
        services.add_channel(session=session, actor=actor(session), unit_code=unit, url=url, label=label,
                             channel_rules=ChannelRules.from_settings(settings()))
    console.print(f"已为单位 {unit} 添加通知通道 {url.split('://', 1)[0]}://…")


@app.command()
def deliver():
    """Send every message still pending on an external channel (the server does this on its schedule)."""
    config = settings()
    run = services.deliver_pending(database(), settings=config)
    console.print(f"已发送 {run.sent} 条,失败 {run.failed} 条(失败的会按间隔重试,最多 {config.push_max_attempts} 次),"
                  f"结果不明 {run.uncertain} 条(不重发)。")
