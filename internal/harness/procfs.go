package harness

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what the tools read from /proc/PID/stat (Linux).
type procStat struct {
	name       string
	state      string
	ppid       int
	cpuSeconds float64 // user + system
}

// userHZ is the unit of /proc/PID/stat's CPU times: 100 on every Linux the tools run on.
const userHZ = 100

func readProcStat(pid int) (procStat, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return procStat{}, false
	}
	fields := strings.Fields(string(data[closing+1:]))
	if len(fields) < 13 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStat{}, false
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return procStat{
		name: string(data[open+1 : closing]), state: fields[0], ppid: ppid,
		cpuSeconds: (utime + stime) / userHZ,
	}, true
}

// memoryOf reads VmHWM (peak RSS) and VmRSS of pid from /proc/PID/status, in bytes.
func memoryOf(pid int) (peak, current int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kib, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmHWM:":
			peak = kib * 1024
		case "VmRSS:":
			current = kib * 1024
		}
	}
	return peak, current
}

// fileBackedMemoryOf is the part of a process's RSS that maps files (RssFile): mostly its
// own binary's pages, which the kernel may map in large folios whether used or not.
func fileBackedMemoryOf(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "RssFile:" {
			kib, _ := strconv.ParseInt(fields[1], 10, 64)
			return kib * 1024
		}
	}
	return 0
}

// ChildProcess is a live process this one started: the manager, etcd or kube-apiserver.
type ChildProcess struct {
	PID  int
	Name string
}

func (c ChildProcess) String() string { return fmt.Sprintf("%s (pid %d)", c.Name, c.PID) }

// ChildProcesses lists this process's live children from /proc; envtest does not expose the
// ones it starts, and the demo proves at the end that they are gone.
func ChildProcesses() []ChildProcess {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var children []ChildProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if stat, ok := readProcStat(pid); ok && stat.ppid == self && stat.state != "Z" {
			children = append(children, ChildProcess{PID: pid, Name: stat.name})
		}
	}
	return children
}

// StillRunning lists those of processes that are alive and still the same program.
func StillRunning(processes []ChildProcess) []ChildProcess {
	var left []ChildProcess
	for _, p := range processes {
		if stat, ok := readProcStat(p.PID); ok && stat.name == p.Name && stat.state != "Z" {
			left = append(left, p)
		}
	}
	return left
}

// CPUSecondsOf is the user and system CPU time so far of pid, a process of this user
// (kube-apiserver, etcd); 0 when it cannot be read.
func CPUSecondsOf(pid int) float64 {
	stat, ok := readProcStat(pid)
	if !ok {
		return 0
	}
	return stat.cpuSeconds
}
