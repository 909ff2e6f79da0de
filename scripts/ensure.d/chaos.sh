# The chaos suite's full-disk fault (docs/reliability.md) mounts a small tmpfs
# with size=, or, where tmpfs cannot be mounted, a loop-mounted ext4 image:
# mount and losetup come with util-linux, mkfs.ext4 with e2fsprogs. Toxiproxy
# runs in the test process (a Go module): nothing to install for it.
apt_install util-linux mount e2fsprogs
log "chaos: $(mount --version 2>&1 | head -1); $(mkfs.ext4 -V 2>&1 | head -1)"
