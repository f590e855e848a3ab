"""An in-place progress bar on stderr, so that a command's summary on stdout stays clean for scripts."""

WIDTH = 30


def show_progress(stderr, number: int, total: int, label: str = "") -> None:
    done = WIDTH * number // total if total else WIDTH
    stderr.write(f"\r[{'#' * done}{'.' * (WIDTH - done)}] {number}/{total} {label[:40]:<40}", ending="")
    stderr.flush()
