// Command flood measures examples/basic under a flood of connections that
// each declare a 1 MiB body and send all of it but the last byte, and
// reports the example's peak memory (VmHWM from /proc/PID/status) and what
// genuine deliveries sent during the flood got. Two floods: a header whose
// timestamp is a year old (refused before the body is read), and a
// fresh-looking forged header (read, up to WithMaxBytesInFlight). The
// baseline, in the same run, is the forged flood with the bound raised to
// 1 GiB: what the bound saves.
//
//	go run ./bench/cmd/flood                 # 200 connections
//	go run ./bench/cmd/flood -conns 400
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
)

const secret = "whsec_flood_local"

func main() {
	conns := flag.Int("conns", 200, "connections in the flood")
	size := flag.Int("size", 1<<20, "the body length each declares")
	genuine := flag.Int("genuine", 5, "signed deliveries sent during each flood")
	flag.Parse()
	if err := run(os.Stdout, *conns, *size, *genuine); err != nil {
		log.Fatal(err)
	}
}

// scenario is one flood against one example process.
type scenario struct {
	name   string
	header func() string
	args   []string
}

func run(out io.Writer, conns, size, genuine int) error {
	dir, err := os.MkdirTemp("", "flood")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "basic")
	build := exec.Command("go", "build", "-o", bin, "github.com/stripewebhook/stripewebhook/examples/basic")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building examples/basic: %w", err)
	}
	forged := func() string { return fmt.Sprintf("t=%d,v1=%s", time.Now().Unix(), strings.Repeat("ab", 32)) }
	stale := func() string {
		return fmt.Sprintf("t=%d,v1=%s", time.Now().AddDate(-1, 0, 0).Unix(), strings.Repeat("ab", 32))
	}
	scenarios := []scenario{
		{"a year-old header", stale, nil},
		{"a forged fresh header", forged, nil},
		{"forged, bound raised to 1 GiB (baseline)", forged, []string{"-max-bytes-in-flight", strconv.Itoa(1 << 30)}},
	}
	fmt.Fprintf(out, "%d connections, each declaring %d bytes and sending all but the last\n", conns, size)
	var hwm []float64
	for _, sc := range scenarios {
		mib, statuses, err := flood(bin, sc, conns, size, genuine)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		hwm = append(hwm, mib)
		fmt.Fprintf(out, "%-42s peak RSS %6.1f MiB   genuine deliveries: %s\n", sc.name, mib, statuses)
	}
	fmt.Fprintf(out, "ratio forged/baseline: %.2f\n", hwm[1]/hwm[2])
	return nil
}

// flood starts the example, opens the connections, sends the genuine
// deliveries while they hang, and returns the example's VmHWM in MiB and
// the genuine deliveries' statuses.
func flood(bin string, sc scenario, conns, size, genuine int) (float64, string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-addr", "127.0.0.1:0", "-read-timeout", "60s"}, sc.args...)...)
	cmd.Env = append(os.Environ(), "STRIPE_WEBHOOK_SECRET="+secret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, "", err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	defer func() { cancel(); cmd.Wait() }() // kill it, then reap it
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		return 0, "", fmt.Errorf("the example printed nothing")
	}
	addr, ok := strings.CutPrefix(lines.Text(), "listening on ")
	addr, _, _ = strings.Cut(addr, ": POST")
	if !ok {
		return 0, "", fmt.Errorf("first line %q", lines.Text())
	}
	go io.Copy(io.Discard, stdout)

	body := bytes.Repeat([]byte(" "), size-1)
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, "", err
		}
		open = append(open, c)
		fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nStripe-Signature: %s\r\nContent-Length: %d\r\n\r\n", sc.header(), size)
		go c.Write(body) // a refused connection stops reading: do not wait for it
	}
	time.Sleep(2 * time.Second) // let the example read what it reads

	var statuses []string
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range genuine {
		payload, err := fixture.Load("customer.created", fixture.ID(fmt.Sprintf("evt_flood_%d_%d", time.Now().UnixNano(), i)))
		if err != nil {
			return 0, "", err
		}
		req, _ := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), secret))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			statuses = append(statuses, "error: "+err.Error())
			continue
		}
		resp.Body.Close()
		statuses = append(statuses, fmt.Sprintf("%d in %v", resp.StatusCode, time.Since(start).Round(time.Millisecond)))
	}
	mib, err := vmHWM(cmd.Process.Pid)
	return mib, strings.Join(statuses, ", "), err
}

// vmHWM reads a process's peak resident set size, in MiB.
func vmHWM(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
