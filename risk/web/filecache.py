"""Answers computed from files (the test score, summary statistics, missing data, the risk list), kept in
memory until one of their files changes: by size, time or inode, or a link that points elsewhere."""

import os
import threading


class FileCache:
    """Answers computed from files, kept until one of the files changes (size, time or inode)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = {}

    def get(self, name: str, paths, compute):
        key = tuple(file_key(path) for path in paths)
        with self.lock:
            entry = self.entries.get(name)
            if entry and entry[0] == key:
                return entry[1]
        value = compute()
        with self.lock:
            self.entries[name] = (key, value)
        return value


def file_key(path) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (str(os.path.realpath(path)), stat.st_ino, stat.st_mtime_ns, stat.st_size)
