"""A disk that can lose power: an ext4 file system on a loop device, whose image is copied as
it stands at a crash, without any sync, and mounted in its place.

What the copy holds is what had reached the (loop) block device: data a process fsynced, and
whatever the kernel happened to write back; what was only in the page cache is gone, as after a
power cut or a kernel crash. The journal commits every 60 s (`commit=60`) and dirty pages are
written back after 30 s (the kernel's default), so in a test that takes the copy within seconds
of its writes, only fsync puts data on the disk. Needs root (mount, loop devices)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MOUNT_OPTIONS = "loop,commit=60"


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


class Disk:
    def __init__(self, root: Path, size: str = "256M") -> None:
        self.image = root / "disk.img"
        self.mountpoint = root / "mnt"
        self.size = size
        self.mounted = False

    def create(self) -> Disk:
        if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
            pytest.skip("a loop-mounted file system needs root and mkfs.ext4")
        self.mountpoint.mkdir()
        _run("truncate", "-s", self.size, str(self.image))
        _run("mkfs.ext4", "-q", "-F", str(self.image))
        try:
            _run("mount", "-o", MOUNT_OPTIONS, str(self.image), str(self.mountpoint))
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot mount a loop device here: {exc.stderr.decode().strip()}")
        self.mounted = True
        return self

    def power_cut(self) -> None:
        """The disk as a power cut leaves it, in place of the one that was mounted (every
        process writing to it must be dead: SIGKILL, so that nothing flushes)."""
        crashed = self.image.with_name("crashed.img")
        shutil.copyfile(self.image, crashed)  # first: unmounting would write everything back
        self.unmount()
        self.image.unlink()
        crashed.rename(self.image)
        _run("mount", "-o", MOUNT_OPTIONS, str(self.image), str(self.mountpoint))
        self.mounted = True

    def unmount(self) -> None:
        if self.mounted:
            self.mounted = False
            subprocess.run(["umount", str(self.mountpoint)], check=False, timeout=60)
