"""The ``melodybot`` command line: the root group, and every command added to it by name.

The commands live beside this module, grouped by concern (composing, training, running the
bot); none of them imports NumPy, music21 or TensorFlow before it runs, so the root group can
set the process up first (melodybot.environment) and ``--help`` answers at once.
"""

from __future__ import annotations

import sys

import click

from melodybot import bot_commands, compose_commands, training_commands
from melodybot.environment import configure_process


class _RootGroup(click.Group):
    """Lists each command with its whole summary (its help's first sentence), wrapped to the
    terminal: click's own listing cuts a summary with "..." where it would not fit beside the
    command's name, which left half a sentence of most."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=sys.maxsize)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=_RootGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
def main() -> None:
    """melodybot: compose folk-style melodies with an LSTM trained on the Essen collection."""
    configure_process()  # before any command imports NumPy or TensorFlow


# Composing with a trained model (melodybot.compose_commands).
main.add_command(compose_commands.generate)
main.add_command(compose_commands.info)
# Making and measuring models; these need the `train` extra (melodybot.training_commands).
main.add_command(training_commands.prepare)
main.add_command(training_commands.train)
main.add_command(training_commands.evaluate)
main.add_command(training_commands.report)
# Running and looking after the bot (melodybot.bot_commands).
main.add_command(bot_commands.run)
main.add_command(bot_commands.chat)
for platform_command in bot_commands.PLATFORM_COMMANDS:  # discord, telegram
    main.add_command(platform_command)
main.add_command(bot_commands.worker)
main.add_command(bot_commands.queue)
main.add_command(bot_commands.backup)
main.add_command(bot_commands.migrate_data)
main.add_command(bot_commands.health)
