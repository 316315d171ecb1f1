package litefstest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// openFile is a file in a mount that a process holds open or maps.
type openFile struct {
	pid    int
	comm   string // the process's name
	path   string
	mapped bool // in /proc/<pid>/maps (SQLite's -shm), else an open descriptor
}

func (o openFile) String() string {
	how := "open"
	if o.mapped {
		how = "mapped"
	}
	return fmt.Sprintf("%s %s by pid %d (%s)", how, o.path, o.pid, o.comm)
}

// openUnder lists the files at or below dir that processes hold open or
// map, leaving out the processes of group skipGroup (LiteFS itself and the
// app it runs with exec:, which LiteFS stops before it unmounts). It reads
// /proc; processes it may not inspect are left out, and where there is no
// /proc it finds nothing.
func openUnder(dir string, skipGroup int) []openFile {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	dir = filepath.Clean(dir)
	var found []openFile
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, pgid, ok := procStat(pid)
		if !ok || pgid == skipGroup {
			continue
		}
		for _, path := range openFDs(pid, dir) {
			found = append(found, openFile{pid: pid, comm: comm, path: path})
		}
		for _, path := range mappedFiles(pid, dir) {
			found = append(found, openFile{pid: pid, comm: comm, path: path, mapped: true})
		}
	}
	return found
}

// procStat returns a process's name and process group from
// /proc/<pid>/stat.
func procStat(pid int) (comm string, pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	return parseStat(string(b))
}

// parseStat parses the name and process group out of the contents of
// /proc/<pid>/stat: "pid (comm) state ppid pgrp ...", where comm may hold
// spaces and parentheses.
func parseStat(s string) (comm string, pgid int, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 3 {
		return "", 0, false
	}
	pgid, err := strconv.Atoi(fields[2])
	return s[open+1 : end], pgid, err == nil
}

// openFDs returns the paths under dir of the process's open descriptors.
func openFDs(pid int, dir string) []string {
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return nil
	}
	var paths []string
	for _, fd := range fds {
		target, err := os.Readlink(fdDir + "/" + fd.Name())
		if err == nil && isUnder(target, dir) && !slices.Contains(paths, target) {
			paths = append(paths, target)
		}
	}
	return paths
}

// mappedFiles returns the paths under dir that the process maps.
func mappedFiles(pid int, dir string) []string {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	var paths []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "addr perms offset dev inode      path"; the path may hold spaces.
		fields := strings.SplitN(sc.Text(), " ", 6)
		if len(fields) < 6 {
			continue
		}
		path := strings.TrimSpace(fields[5])
		if isUnder(path, dir) && !slices.Contains(paths, path) {
			paths = append(paths, path)
		}
	}
	return paths
}

// isUnder reports whether path is dir or below it.
func isUnder(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}
