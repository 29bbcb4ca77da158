"""Command-line plumbing shared by the console scripts.

Each tool (ddsp_export, ddsp_timbre_transfer, ddsp_generate, ddsp_evaluate,
the demo) defines its flags in a `FlagValues` of its own, so that tools
importing one another (or a test process importing all of them) never clash
over common names such as --model_dir, --output or --crepe_model_capacity.
absl's own flags (--alsologtostderr, --verbosity, ...) stay global.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence

from absl import app
from absl import flags

from ddsp import crepe

_HELP_FLAGS = ('help', 'h', 'helpfull', '?', 'helpshort')


def define_crepe_flags(flag_values: flags.FlagValues,
                       capacity: str = 'full',
                       frame_rate: Optional[float] = None,
                       frame_rate_default_help: str = "the model's frame "
                                                     'rate') -> None:
    """Defines --crepe_model_capacity and --crepe_frame_rate (how f0 is
    computed) in `flag_values`; the defaults are the reference's (CREPE full
    at the frame rate) unless given."""
    flags.DEFINE_enum('crepe_model_capacity', capacity, list(crepe.CAPACITIES),
                      'CREPE model size (tiny is ~20x faster than full).',
                      flag_values=flag_values)
    flags.DEFINE_float('crepe_frame_rate', frame_rate,
                       f'Rate CREPE runs at ({frame_rate_default_help} when '
                       'unset); lower is faster, f0 is interpolated to the '
                       'frame rate.',
                       flag_values=flag_values)
    # Unset (None) or > 0: a lower_bound of 0 would accept 0.
    flags.register_validator('crepe_frame_rate',
                             lambda rate: rate is None or rate > 0,
                             '--crepe_frame_rate must be > 0.',
                             flag_values=flag_values)


def audio_output_errors(flag: str, path: Optional[str]) -> list:
    """[message] if `path` is set without an audio file extension soundfile
    can write (`timbre_transfer.audio_format`, as the writer), else []."""
    if not path:
        return []
    from ddsp.training import timbre_transfer
    try:
        timbre_transfer.audio_format(path)
    except ValueError as e:
        return [f'--{flag}: {e}']
    return []


def make_flag_parser(flag_values: flags.FlagValues, name: str,
                     usage: str) -> Callable[[Sequence[str]], list]:
    """A `flags_parser` for `absl.app.run` over a tool's own flags.

    Args:
      flag_values: The tool's flags.
      name: Program name used in error messages.
      usage: Text printed above the flags by --help.

    Returns:
      parse(argv) -> the positional arguments (program name first). It exits
      with status 0 after --help and 2 after an unknown or malformed flag.
    """
    def parse(argv: Sequence[str]) -> list:
        if any(a.startswith('-') and a.lstrip('-').split('=')[0] in _HELP_FLAGS
               for a in argv[1:]):
            print(usage)
            print(flag_values.get_help())
            sys.exit(0)
        flag_values.unparse_flags()
        try:
            rest = flag_values(list(argv), known_only=True)
            return flags.FLAGS(rest)
        except flags.Error as e:
            print(f'{name}: {e}\nTry --help.', file=sys.stderr)
            sys.exit(2)
    return parse


def print_errors(name: str, errors: Sequence[object], status: int = 2) -> int:
    """Prints each error as 'name: error' on stderr; returns `status`."""
    for error in errors:
        print(f'{name}: {error}', file=sys.stderr)
    return status


def run_tool(run: Callable[[], Optional[int]], flag_values: flags.FlagValues,
             name: str, usage: str) -> None:
    """Runs `run()` as an absl app whose flags are `flag_values`; what `run`
    returns is the exit status."""
    app.run(lambda argv: sys.exit(run()),
            flags_parser=make_flag_parser(flag_values, name, usage))


def run_with_global_flags(main: Callable[[list], object], module_name: str,
                          usage: str, extra_flags: Sequence[str] = ()) -> None:
    """Runs `main` as an absl app on the global flags (tools that keep the
    reference's global FLAGS: ddsp_run, ddsp_prepare_tfrecord).

    --help lists the flags of the main module, and an installed console
    script's wrapper defines none: the flags of `module_name` (plus
    `extra_flags`) are registered for it, and `usage` becomes its docstring.
    """
    names = [f.name for f in flags.FLAGS.get_flags_for_module(module_name)]
    for name in [*names, *extra_flags]:
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
    main_module = sys.modules.get('__main__')
    if main_module is not None and not main_module.__doc__:
        main_module.__doc__ = usage
    app.run(main)
