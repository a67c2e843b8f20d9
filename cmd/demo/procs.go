package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// managerProcess is the manager binary running as a child, in a process group of its own so
// that Ctrl-C reaches only the demo, which then stops it in order.
type managerProcess struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}

	mu       sync.Mutex
	err      error
	stopping bool
}

func (d *demo) startManager() error {
	bin, err := filepath.Abs(d.opts.manager)
	if err != nil {
		return err
	}
	logPath := filepath.Join(d.runDir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + d.kubeconfig,
		"--leader-elect=false",
		// The live table counts refreshes from the operator's TokenRefreshed events.
		"--issue-events",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// Should the demo itself be killed (SIGKILL), the manager goes with it.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting the manager: %w", err)
	}
	m := &managerProcess{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(m.done)
	}()
	d.manager = m
	say("manager started: %s %s", relPath(bin), strings.Join(args, " "))
	return nil
}

func (m *managerProcess) pid() int { return m.cmd.Process.Pid }

// exited reports whether the manager stopped without being asked to, and how.
func (m *managerProcess) exited() (bool, error) {
	select {
	case <-m.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return !m.stopping, m.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM (the manager shuts down cleanly on it), then SIGKILL after timeout.
func (m *managerProcess) stop(timeout time.Duration) error {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	select {
	case <-m.done:
		return nil
	default:
	}
	_ = syscall.Kill(-m.pid(), syscall.SIGTERM)
	select {
	case <-m.done:
		return nil
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-m.pid(), syscall.SIGKILL)
	select {
	case <-m.done:
		return fmt.Errorf("the manager did not stop within %s of SIGTERM; killed it", timeout)
	case <-time.After(5 * time.Second):
		return errors.New("the manager survived SIGKILL")
	}
}

// tail is the end of the manager's log, for a failed run.
func (m *managerProcess) tail(lines int) string {
	data, err := os.ReadFile(m.logPath)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// childProcess is a process the demo started: the manager, etcd or kube-apiserver.
type childProcess struct {
	pid  int
	name string
}

// listChildren finds the demo's child processes in /proc (Linux); envtest does not expose
// the ones it starts, and the demo wants to prove at the end that they are gone.
func listChildren() []childProcess {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []childProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, name, state, ok := procStat(pid)
		if ok && ppid == self && state != "Z" {
			out = append(out, childProcess{pid: pid, name: name})
		}
	}
	return out
}

// stillRunning lists the given processes that are alive and still the same program.
func stillRunning(children []childProcess) []string {
	var left []string
	for _, c := range children {
		_, name, state, ok := procStat(c.pid)
		if ok && name == c.name && state != "Z" {
			left = append(left, fmt.Sprintf("%s (pid %d)", c.name, c.pid))
		}
	}
	return left
}

// procStat reads the parent pid, command name and state of pid from /proc/PID/stat.
func procStat(pid int) (ppid int, name, state string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return 0, "", "", false
	}
	fields := strings.Fields(string(data[closing+1:]))
	if len(fields) < 2 {
		return 0, "", "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	if err != nil {
		return 0, "", "", false
	}
	return ppid, string(data[open+1 : closing]), fields[0], true
}

func relPath(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}
