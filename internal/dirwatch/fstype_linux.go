package dirwatch

import "syscall"

// statfsType returns the f_type statfs reports for dir's file system.
func statfsType(dir string) (uint32, error) {
	var sfs syscall.Statfs_t
	for {
		err := syscall.Statfs(dir, &sfs)
		if err == syscall.EINTR {
			continue
		}
		// f_type is a 32-bit magic number in a word of the platform's size.
		return uint32(sfs.Type), err
	}
}

// localMagic lists the file systems whose changes all pass through this
// kernel, so that inotify sees each of them. A network or shared file
// system (NFS, CIFS, 9p, virtiofs, FUSE, Ceph, Lustre) can be changed by
// another host or a server, which inotify never reports.
var localMagic = map[uint32]bool{
	0xEF53:     true, // ext2, ext3, ext4
	0x58465342: true, // xfs
	0x9123683E: true, // btrfs
	0x01021994: true, // tmpfs
	0x858458F6: true, // ramfs
	0x794C7630: true, // overlayfs
	0xF2F52010: true, // f2fs
	0x2FC12FC1: true, // zfs
	0xCA451A4E: true, // bcachefs
}

func localFS(t uint32) bool { return localMagic[t] }
