package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ManagerProcessOptions say how to run the manager binary out of cluster.
type ManagerProcessOptions struct {
	Binary     string
	Kubeconfig string
	// LogPath receives the manager's stdout and stderr.
	LogPath string
	// Args are flags beyond those every harness run needs (kubeconfig, no leader
	// election, no metrics or probe listeners, loopback endpoints admitted: the sandbox
	// banks listen on 127.0.0.1).
	Args []string
}

// ManagerProcess is the manager binary running as a child, so that its memory and CPU are
// its own. It runs in a process group of its own, so that Ctrl-C reaches only the caller,
// which then stops it in order.
type ManagerProcess struct {
	cmd     *exec.Cmd
	logPath string
	started chan struct{} // closed when the controller's workers start (caches synced)
	done    chan struct{}

	mu       sync.Mutex
	err      error
	stopping bool
}

// BuildManager builds ./cmd of the repository at root into out.
func BuildManager(root, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./cmd")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// StartManagerProcess starts the manager; WaitStarted says when it is working.
func StartManagerProcess(opts ManagerProcessOptions) (*ManagerProcess, error) {
	logFile, err := os.Create(opts.LogPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(opts.Binary, managerArgs(opts)...)
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	// Client-go's proxy settings must not route the local apiserver or sandbox anywhere.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+opts.Kubeconfig,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	// Should the caller itself be killed (SIGKILL), the manager goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting the manager: %w", err)
	}
	m := &ManagerProcess{cmd: cmd, logPath: opts.LogPath, started: make(chan struct{}), done: make(chan struct{})}
	logged := make(chan struct{})
	go m.copyLog(stderr, logFile, logged)
	go func() {
		<-logged // Wait closes the pipe: read it to the end first.
		err := cmd.Wait()
		logFile.Close()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(m.done)
	}()
	return m, nil
}

func managerArgs(opts ManagerProcessOptions) []string {
	return append([]string{
		"--kubeconfig=" + opts.Kubeconfig,
		"--leader-elect=false",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--allow-loopback-endpoints",
	}, opts.Args...)
}

// copyLog copies stderr into the log and notices when the controller's workers start.
func (m *ManagerProcess) copyLog(stderr io.Reader, log io.Writer, logged chan<- struct{}) {
	defer close(logged)
	var once sync.Once
	lines := bufio.NewScanner(stderr)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	for lines.Scan() {
		line := lines.Text()
		fmt.Fprintln(log, line)
		if strings.Contains(line, "Starting workers") {
			once.Do(func() { close(m.started) })
		}
	}
	_, _ = io.Copy(log, stderr)
}

// Args are the flags the manager was started with.
func (m *ManagerProcess) Args() []string { return m.cmd.Args[1:] }

// PID is the manager's process id.
func (m *ManagerProcess) PID() int { return m.cmd.Process.Pid }

// LogPath is the file that holds the manager's output.
func (m *ManagerProcess) LogPath() string { return m.logPath }

// WaitStarted waits until the manager's caches are synced and its workers run.
func (m *ManagerProcess) WaitStarted(timeout time.Duration) error {
	select {
	case <-m.started:
		return nil
	case <-m.done:
		return fmt.Errorf("the manager exited before starting (%v); see %s", m.exitError(), m.logPath)
	case <-time.After(timeout):
		return fmt.Errorf("the manager did not start its workers within %s; see %s", timeout, m.logPath)
	}
}

// Started reports, without waiting, whether the manager's workers run: with leader
// election, whether it has become the leader.
func (m *ManagerProcess) Started() bool {
	select {
	case <-m.started:
		return true
	default:
		return false
	}
}

func (m *ManagerProcess) exitError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Exited reports whether the manager stopped without being asked to, and how.
func (m *ManagerProcess) Exited() (bool, error) {
	select {
	case <-m.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return !m.stopping, m.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM (the manager shuts down cleanly on it), then SIGKILL after timeout.
func (m *ManagerProcess) Stop(timeout time.Duration) error {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	select {
	case <-m.done:
		return nil
	default:
	}
	_ = syscall.Kill(-m.PID(), syscall.SIGTERM)
	select {
	case <-m.done:
		return nil
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-m.PID(), syscall.SIGKILL)
	select {
	case <-m.done:
		return fmt.Errorf("the manager did not stop within %s of SIGTERM; killed it", timeout)
	case <-time.After(5 * time.Second):
		return errors.New("the manager survived SIGKILL")
	}
}

// Kill sends SIGKILL at once, as a node failure or an OOM kill would, and waits for the
// process to be gone.
func (m *ManagerProcess) Kill() error {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	_ = syscall.Kill(-m.PID(), syscall.SIGKILL)
	select {
	case <-m.done:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("the manager survived SIGKILL")
	}
}

// LogTail is the end of the manager's log, for a failed run.
func (m *ManagerProcess) LogTail(lines int) string {
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

// Memory is the manager's peak RSS (VmHWM) and current RSS (VmRSS), in bytes.
func (m *ManagerProcess) Memory() (peak, current int64) { return memoryOf(m.PID()) }

// FileBackedMemory is the part of the manager's current RSS that maps files (RssFile): its
// binary's pages, which say nothing of what the manager itself holds.
func (m *ManagerProcess) FileBackedMemory() int64 { return fileBackedMemoryOf(m.PID()) }

// CPUSeconds is the manager's user and system CPU time so far.
func (m *ManagerProcess) CPUSeconds() float64 {
	stat, ok := readProcStat(m.PID())
	if !ok {
		return 0
	}
	return stat.cpuSeconds
}
