"""The ``sepsum`` dispatcher: version, help, exit codes."""

import subprocess
import sys

from app import __version__
from app.cli import main


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"sepsum {__version__}"


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: sepsum" in capsys.readouterr().err


def test_console_script_runs_as_module():
    result = subprocess.run([sys.executable, "-m", "app", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("sepsum ")


def test_parsing_the_command_line_does_not_import_torch():
    """``sepsum --version`` and ``--help`` answer at once: torch loads only when a command runs."""
    code = "import sys, app.cli; app.cli.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_every_subcommand_is_registered():
    from app.cli import SUBCOMMANDS, build_parser

    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    assert list(subparsers.choices) == SUBCOMMANDS


def test_a_subcommand_that_does_not_import_is_an_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "app.cli.gui_cmd", None)  # what a bundle that lost the module sees
    assert main(["summarize", "--help"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sepsum: the 'gui' command cannot load (") and "reinstall sepsum" in err
    assert err.count("\n") == 1
