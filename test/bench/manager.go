package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// managerProc is the operator's manager running as its own process, so that its memory is
// its own and not the bench's, etcd's or the apiserver's.
type managerProc struct {
	cmd     *exec.Cmd
	logPath string
	started chan struct{} // closed when the controller's workers start (caches synced)
	done    chan struct{}
	err     error
}

func buildManager(root, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./cmd")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func startManager(bin, kubeconfig, logPath string, extra []string) (*managerProc, error) {
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--allow-insecure-endpoints",
	}, extra...)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	// Client-go's own proxy settings must not route 127.0.0.1 anywhere.
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	m := &managerProc{cmd: cmd, logPath: logPath, started: make(chan struct{}), done: make(chan struct{})}
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if strings.Contains(line, "Starting workers") {
				once.Do(func() { close(m.started) })
			}
		}
		_, _ = io.Copy(logFile, stderr)
	}()
	go func() {
		m.err = cmd.Wait()
		logFile.Close()
		close(m.done)
	}()
	return m, nil
}

// waitStarted waits until the manager's caches are synced and its workers run.
func (m *managerProc) waitStarted(timeout time.Duration) error {
	select {
	case <-m.started:
		return nil
	case <-m.done:
		return fmt.Errorf("the manager exited before starting (%v); see %s", m.err, m.logPath)
	case <-time.After(timeout):
		return fmt.Errorf("the manager did not start its workers within %s; see %s", timeout, m.logPath)
	}
}

func (m *managerProc) pid() int { return m.cmd.Process.Pid }

// memory returns VmHWM (peak RSS) and VmRSS of the manager, in bytes.
func (m *managerProc) memory() (hwm, rss int64) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(m.pid()), "status"))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			hwm = kb * 1024
		case "VmRSS:":
			rss = kb * 1024
		}
	}
	return hwm, rss
}

// cpuSeconds is the manager's user+system CPU time so far.
func (m *managerProc) cpuSeconds() float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(m.pid()), "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may contain spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

func (m *managerProc) stop() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
