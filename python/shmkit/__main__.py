"""The shmkit command, from Python: ``python -m shmkit ls``, or ``shmkit ls``
where pip installed the package (its console script calls main()).

It runs the command the C library ships (cli/), compiled into the package as
shmkit/bin/shmkit when the package is built: the same commands, options,
output and exit status (``shmkit --help``), not a second implementation."""
import os
import sys

__all__ = ["command_path", "main"]


def command_path():
    """The path of the shmkit command inside this package, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "shmkit")
    return path if os.access(path, os.X_OK) else None


def main(argv=None):
    """Runs the command with argv (default: this process's arguments) in
    place of this process; returns only if it cannot be started."""
    args = sys.argv[1:] if argv is None else list(argv)
    path = command_path()
    if path is None:
        sys.stderr.write("shmkit: this installation of the Python package has no shmkit command "
                         "(expected %s)\n" % os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "shmkit"))
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(path, ["shmkit", *args])
    except OSError as e:
        sys.stderr.write("shmkit: cannot run %s: %s\n" % (path, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
