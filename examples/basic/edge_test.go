package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

var posts int

// signedPost POSTs a signed fixture to url with client and extra headers.
func signedPost(t *testing.T, client *http.Client, url string, header http.Header) (int, error) {
	posts++
	payload := webhooktest.Fixture(t, "payment_method.attached", fixture.ID(fmt.Sprintf("evt_edge_%d_%d", time.Now().UnixNano(), posts))) // a new event each time
	req, _ := http.NewRequest("POST", url, bytes.NewReader(payload))
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), secret))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// With -tls-cert and -tls-key the example serves HTTPS, TLS 1.2 at least:
// a TLS 1.1 client is refused.
func TestServesTLS(t *testing.T) {
	cert, key, pool := selfSigned(t)
	url, out, _ := startExample(t, "-tls-cert", cert, "-tls-key", key)
	url = strings.Replace(url, "http://", "https://", 1)
	client := func(maxVersion uint16) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}}}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if status, err := signedPost(t, client(v), url, nil); err != nil || status != 200 {
			t.Fatalf("TLS %x: %d %v", v, status, err)
		}
	}
	if _, err := signedPost(t, client(tls.VersionTLS11), url, nil); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("a TLS 1.1 client was not refused: %v", err)
	}
	if status, err := signedPost(t, &http.Client{Timeout: 5 * time.Second}, strings.Replace(url, "https://", "http://", 1), nil); err == nil && status == 200 {
		t.Fatal("plain HTTP was served")
	}
	if n := printed(out, "PaymentMethod was attached", 2); n != 2 {
		t.Fatalf("%d deliveries ran, want the two over TLS 1.2 and 1.3", n)
	}
	if err := run(t.Context(), []string{"-tls-cert", cert}, secretEnv, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Fatalf("-tls-cert alone: %v", err)
	}
}

// -allow-ips and -trusted-proxies on a real listener: a request from a
// trusted proxy (here, the loopback) naming an allowed client in
// X-Forwarded-For passes; the same header from an untrusted peer is refused.
func TestAllowIPs(t *testing.T) {
	allowed := http.Header{"X-Forwarded-For": {"203.0.113.5"}}
	behind, out, _ := startExample(t, "-allow-ips", "stripe,203.0.113.0/24", "-trusted-proxies", "127.0.0.1/32")
	for header, want := range map[*http.Header]int{&allowed: 200, {"X-Forwarded-For": {"198.51.100.1"}}: 403, {}: 403,
		{"X-Forwarded-For": {stripeIP()}}: 200} {
		if status, err := signedPost(t, http.DefaultClient, behind, *header); err != nil || status != want {
			t.Errorf("behind a trusted proxy, %v: %d %v, want %d", *header, status, err, want)
		}
	}
	if n := printed(out, "PaymentMethod was attached", 2); n != 2 {
		t.Fatalf("%d deliveries ran, want the 2 allowed", n)
	}
	direct, _, _ := startExample(t, "-allow-ips", "203.0.113.0/24")
	if status, err := signedPost(t, http.DefaultClient, direct, allowed); err != nil || status != 403 {
		t.Fatalf("a spoofed X-Forwarded-For from an untrusted peer: %d %v, want 403", status, err)
	}
	for _, args := range [][]string{{"-allow-ips", "stripe,example.com"}, {"-trusted-proxies", "10.0.0.0/8"}} {
		if err := run(t.Context(), args, secretEnv, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// printed waits up to a second for out to hold want lines containing s
// (the example's output reaches it through a pipe), and returns how many
// it holds.
func printed(out *syncBuffer, s string, want int) int {
	for deadline := time.Now().Add(time.Second); strings.Count(out.String(), s) < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // one more would show now
	return strings.Count(out.String(), s)
}

func stripeIP() string { return "3.18.12.63" }

// The queue's URL, which may hold a password, is read from
// STRIPEWEBHOOK_QUEUE; the flag still works, with a warning when it
// carries a password.
func TestQueueURLFromTheEnvironment(t *testing.T) {
	path := "sqlite://" + filepath.Join(t.TempDir(), "queue.db")
	env := func(name string) string {
		switch name {
		case "STRIPE_WEBHOOK_SECRET":
			return secret
		case queueEnv:
			return path
		}
		return ""
	}
	var stderr bytes.Buffer
	if got := urlFlagOrEnv("-queue", "", queueEnv, env, &stderr); got != path || stderr.Len() > 0 {
		t.Fatalf("from the environment: %q, %q", got, stderr.String())
	}
	flagged := "amqp://guest:hunter2@127.0.0.1:5672/"
	if got := urlFlagOrEnv("-queue", flagged, queueEnv, env, &stderr); got != flagged || !strings.Contains(stderr.String(), queueEnv) || strings.Contains(stderr.String(), "hunter2") {
		t.Fatalf("from the flag: %q, warning %q", got, stderr.String())
	}
}
