package k8s

import (
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

// procs runs the rig's processes. Each gets its own process group, a log
// file under dir/logs and a pid file under dir/pids, so hack/e2e-k8s.sh can
// stop exactly these after a crash of the test binary. Stop goes in reverse
// start order: sidecars before the plugin, the plugin before the emulator,
// the control plane last.
type procs struct {
	dir  string
	mu   sync.Mutex
	list []*proc
}

type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func newProcs(dir string) (*procs, error) {
	for _, d := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &procs{dir: dir}, nil
}

// start runs bin with args; env entries are added to the harness's own.
func (p *procs) start(name string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(p.dir, "logs", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "+ %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pr := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	_ = os.WriteFile(filepath.Join(p.dir, "pids", name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	go func() {
		pr.err = cmd.Wait()
		logf.Close()
		close(pr.done)
	}()
	p.mu.Lock()
	p.list = append(p.list, pr)
	p.mu.Unlock()
	return pr, nil
}

func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the process's log.
func (pr *proc) tail(n int) string {
	data, _ := os.ReadFile(pr.logPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkAlive reports every process that has exited, with its log tail.
func (p *procs) checkAlive() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, pr := range p.list {
		if pr.exited() {
			errs = append(errs, fmt.Errorf("%s exited (%v); log tail:\n%s", pr.name, pr.err, pr.tail(15)))
		}
	}
	return errors.Join(errs...)
}

// stopGrace is how long a process gets after SIGTERM. kube-apiserver's
// graceful shutdown took up to ~9 s in the rig's measurements.
const stopGrace = 15 * time.Second

// stop ends one process group: SIGTERM, then SIGKILL after stopGrace.
func (pr *proc) stop() {
	if pr.exited() {
		return
	}
	pgid := pr.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-pr.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-pr.done
	}
}

// stopAll stops everything in reverse start order and removes the pid files.
func (p *procs) stopAll() {
	p.mu.Lock()
	list := append([]*proc(nil), p.list...)
	p.list = nil
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
		_ = os.Remove(filepath.Join(p.dir, "pids", list[i].name+".pid"))
	}
}
