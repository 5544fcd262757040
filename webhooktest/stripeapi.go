package webhooktest

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v82"
)

// StripeAPI is a fake of the parts of Stripe's API that thin events and
// recovery need, for tests that run offline: GET /v2/core/events/{id} (the
// full event), GET of any related object's URL or added object, and GET
// /v1/events (see AddListedEvent). It starts with the full events and
// related objects of the thin fixtures; add others with AddEvent and
// AddObject. Like Stripe, it answers 404 for an event of a connected
// account fetched without that account's Stripe-Context header, and it
// records every request. stripe-mock has no /v2 paths; this stands in.
// It is safe for concurrent use.
type StripeAPI struct {
	srv *httptest.Server

	mu       sync.Mutex
	events   map[string][]byte // id → full event
	contexts map[string]string // event id → its context (connected account)
	objects  map[string][]byte // path → object
	v1Events []v1Event         // for GET /v1/events
	requests []APIRequest
}

// v1Event is a snapshot event of the fake's Events list.
type v1Event struct {
	id, typ, account string
	created          int64
	delivered        bool
	payload          []byte
}

// APIRequest is a request the fake received.
type APIRequest struct {
	Method, Path  string
	Query         url.Values
	StripeContext string // the Stripe-Context header, or ""
	StripeAccount string // the Stripe-Account header, or ""
}

// NewStripeAPI starts the fake; the test's cleanup stops it.
func NewStripeAPI(tb testing.TB) *StripeAPI {
	tb.Helper()
	a := &StripeAPI{events: map[string][]byte{}, contexts: map[string]string{}, objects: map[string][]byte{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	tb.Cleanup(a.srv.Close)
	entries, err := fs.ReadDir(apiObjects, "testdata/api")
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	byID := map[string][]byte{}
	for _, e := range entries {
		b, err := apiObjects.ReadFile("testdata/api/" + e.Name())
		if err != nil {
			tb.Fatalf("webhooktest: %v", err)
		}
		byID[strings.TrimSuffix(e.Name(), ".json")] = b
	}
	for _, b := range byID {
		var ev struct {
			Object        string                `json:"object"`
			RelatedObject *stripe.RelatedObject `json:"related_object"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			tb.Fatalf("webhooktest: %v", err)
		}
		if ev.Object != "v2.core.event" {
			continue
		}
		a.AddEvent(tb, b)
		if r := ev.RelatedObject; r != nil && byID[r.ID] != nil {
			a.AddObject(r.URL, byID[r.ID])
		}
	}
	return a
}

// URL is the fake's base URL.
func (a *StripeAPI) URL() string { return a.srv.URL }

// Client returns a Stripe client that talks to the fake, for
// stripewebhook.WithClient.
func (a *StripeAPI) Client() *stripe.Client {
	return stripe.NewClient("sk_test_webhooktest", stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(a.srv.URL),
		HTTPClient:        a.srv.Client(),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})))
}

// AddEvent serves event, a full v2 event as GET /v2/core/events/{id}
// returns it, under its id; an event with a context is served only to
// requests with that Stripe-Context.
func (a *StripeAPI) AddEvent(tb testing.TB, event []byte) {
	tb.Helper()
	var ev struct {
		ID      string  `json:"id"`
		Context *string `json:"context"`
	}
	if err := json.Unmarshal(event, &ev); err != nil || ev.ID == "" {
		tb.Fatalf("webhooktest: not an event with an id: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events[ev.ID] = event
	if ev.Context != nil {
		a.contexts[ev.ID] = *ev.Context
	} else {
		delete(a.contexts, ev.ID)
	}
}

// AddThin serves the full event of a thin event notification (a thin
// fixture, varied or not): the notification's fields with the data of the
// thin fixture of the same type; and, if its related object's URL is not
// served yet, that fixture's related object there. A test that delivers a
// varied thin fixture (another id, a connected account's context) calls it
// so that fetching works.
func (a *StripeAPI) AddThin(tb testing.TB, notification []byte) {
	tb.Helper()
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(notification, &ev); err != nil {
		tb.Fatalf("webhooktest: not a thin event: %v", err)
	}
	var typ string
	var related *stripe.RelatedObject
	json.Unmarshal(ev["type"], &typ)
	json.Unmarshal(ev["related_object"], &related)
	a.mu.Lock()
	var base map[string]json.RawMessage
	for _, b := range a.events {
		var e map[string]json.RawMessage
		if json.Unmarshal(b, &e) == nil && string(e["type"]) == strconv.Quote(typ) {
			base = e
			break
		}
	}
	var baseObject []byte
	if base != nil && related != nil {
		var r stripe.RelatedObject
		if json.Unmarshal(base["related_object"], &r) == nil {
			baseObject = a.objects[r.URL]
		}
	}
	a.mu.Unlock()
	if data, ok := base["data"]; ok {
		ev["data"] = data
	}
	full, err := json.Marshal(ev)
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	a.AddEvent(tb, full)
	if related != nil && baseObject != nil {
		a.mu.Lock()
		if a.objects[related.URL] == nil {
			a.objects[related.URL] = baseObject
		}
		a.mu.Unlock()
	}
}

// AddListedEvent adds a snapshot event (a fixture, say) to what GET
// /v1/events lists: newest first, 100 at most a page with has_more and
// starting_after, filtered by delivery_success, created[gt|gte|lt|lte],
// type and types[], and by account (the event's "account" must be the
// request's Stripe-Account). delivered is the event's delivery_success. The
// event is also served at GET /v1/events/{id}.
func (a *StripeAPI) AddListedEvent(tb testing.TB, event []byte, delivered bool) {
	tb.Helper()
	var ev struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Account string `json:"account"`
		Created int64  `json:"created"`
	}
	if err := json.Unmarshal(event, &ev); err != nil || ev.ID == "" {
		tb.Fatalf("webhooktest: not an event with an id: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.v1Events = append(a.v1Events, v1Event{ev.ID, ev.Type, ev.Account, ev.Created, delivered, event})
	a.objects["/v1/events/"+ev.ID] = event
}

// listEvents answers GET /v1/events as Stripe does, for the filters the
// reconciler uses. Called with a.mu held.
func (a *StripeAPI) listEvents(q url.Values, account string) ([]byte, error) {
	var match []v1Event
	types := map[string]bool{}
	for k, vs := range q {
		if k == "type" || strings.HasPrefix(k, "types[") {
			for _, v := range vs {
				types[v] = true
			}
		}
	}
	bound := func(k string) (int64, bool) {
		v := q.Get("created[" + k + "]")
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	for _, e := range a.v1Events {
		if e.account != account || (len(types) > 0 && !types[e.typ]) {
			continue
		}
		if ds := q.Get("delivery_success"); ds != "" && ds != strconv.FormatBool(e.delivered) {
			continue
		}
		if n, ok := bound("gte"); ok && e.created < n {
			continue
		}
		if n, ok := bound("gt"); ok && e.created <= n {
			continue
		}
		if n, ok := bound("lte"); ok && e.created > n {
			continue
		}
		if n, ok := bound("lt"); ok && e.created >= n {
			continue
		}
		match = append(match, e)
	}
	sort.SliceStable(match, func(i, j int) bool {
		if match[i].created != match[j].created {
			return match[i].created > match[j].created
		}
		return match[i].id > match[j].id
	})
	if after := q.Get("starting_after"); after != "" {
		for i, e := range match {
			if e.id == after {
				match = match[i+1:]
				break
			}
		}
	}
	limit := 10
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= 100 {
		limit = n
	}
	hasMore := len(match) > limit
	if hasMore {
		match = match[:limit]
	}
	data := make([]json.RawMessage, len(match))
	for i, e := range match {
		data[i] = e.payload
	}
	return json.Marshal(map[string]any{"object": "list", "url": "/v1/events", "has_more": hasMore, "data": data})
}

// AddEndpoint serves a webhook endpoint (a v1 webhook_endpoint object) at
// GET /v1/webhook_endpoints/{id}, lists it at GET /v1/webhook_endpoints,
// and lets POST /v1/webhook_endpoints/{id} update its enabled_events.
func (a *StripeAPI) AddEndpoint(tb testing.TB, endpoint []byte) {
	tb.Helper()
	var we struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(endpoint, &we); err != nil || we.ID == "" {
		tb.Fatalf("webhooktest: not an endpoint with an id: %v", err)
	}
	a.AddObject("/v1/webhook_endpoints/"+we.ID, endpoint)
}

// listObjects lists the objects under prefix, as a v1 list. Called with
// a.mu held.
func (a *StripeAPI) listObjects(prefix string) []byte {
	var paths []string
	for p := range a.objects {
		if strings.HasPrefix(p, prefix) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	data := make([]json.RawMessage, len(paths))
	for i, p := range paths {
		data[i] = a.objects[p]
	}
	b, _ := json.Marshal(map[string]any{"object": "list", "url": strings.TrimSuffix(prefix, "/"), "has_more": false, "data": data})
	return b
}

// updateEndpoint applies enabled_events[] to a stored endpoint. Called
// with a.mu held.
func (a *StripeAPI) updateEndpoint(path string, form url.Values) []byte {
	old := a.objects[path]
	if old == nil {
		return nil
	}
	var we map[string]any
	json.Unmarshal(old, &we)
	var events []string
	for i := 0; ; i++ {
		v, ok := form["enabled_events["+strconv.Itoa(i)+"]"]
		if !ok {
			break
		}
		events = append(events, v...)
	}
	if events != nil {
		we["enabled_events"] = events
	}
	b, _ := json.Marshal(we)
	a.objects[path] = b
	return b
}

// AddObject serves object at path, a related object's URL such as
// "/v1/billing/meters/mtr_123".
func (a *StripeAPI) AddObject(path string, object []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.objects[path] = object
}

// Requests returns the requests received so far, in order.
func (a *StripeAPI) Requests() []APIRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]APIRequest(nil), a.requests...)
}

func (a *StripeAPI) serve(w http.ResponseWriter, r *http.Request) {
	sc := r.Header.Get("Stripe-Context")
	r.ParseForm()
	a.mu.Lock()
	a.requests = append(a.requests, APIRequest{Method: r.Method, Path: r.URL.Path, Query: r.Form, StripeContext: sc, StripeAccount: r.Header.Get("Stripe-Account")})
	var body []byte
	const endpoints = "/v1/webhook_endpoints"
	if r.URL.Path == "/v1/events" {
		body, _ = a.listEvents(r.Form, r.Header.Get("Stripe-Account"))
	} else if r.URL.Path == endpoints && r.Method == http.MethodGet {
		body = a.listObjects(endpoints + "/")
	} else if strings.HasPrefix(r.URL.Path, endpoints+"/") && r.Method == http.MethodPost {
		body = a.updateEndpoint(r.URL.Path, r.Form)
	} else if id, ok := strings.CutPrefix(r.URL.Path, "/v2/core/events/"); ok {
		if ctx, connected := a.contexts[id]; !connected || ctx == sc {
			body = a.events[id]
		}
	} else {
		body = a.objects[r.URL.Path]
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_webhooktest")
	switch {
	case !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer sk_"):
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`))
	case body == nil || (r.Method != http.MethodGet && !strings.HasPrefix(r.URL.Path, endpoints+"/")):
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such resource: '` + r.URL.Path + `'"}}`))
	default:
		w.Write(body)
	}
}
