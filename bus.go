package stripewebhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Bus is a cloud event bus that Stripe's event destinations deliver to, the
// other way in than a signed webhook.
type Bus string

// The buses: an event that arrives through one has an [Origin].
const (
	// EventBridge is Amazon EventBridge: a partner event source named
	// aws.partner/stripe.com/<destination id>, routed by a rule to SQS,
	// Lambda or another target. The envelope's detail is the event.
	EventBridge Bus = "eventbridge"
	// EventGrid is Azure Event Grid, delivering CloudEvents 1.0 whose data
	// is the event.
	EventGrid Bus = "eventgrid"
)

// Origin is what a cloud bus's envelope says about the Stripe event inside
// it. An event with an Origin was not verified by a Stripe signature
// (Event.Secret is ""): the cloud's access control is its trust, and
// [WithDestinations] pins the destinations (and [WithAWSAccounts] the AWS
// accounts) that [Handler.Deliver] accepts.
type Origin struct {
	Bus         Bus
	ID          string    // the envelope's own id (not the Stripe event's, Event.ID)
	Destination string    // the event destination that sent it (ed_…), or "" when the source names none
	Source      string    // the envelope's source, as it says
	Account     string    // EventBridge: the AWS account of the bus; "" on Event Grid
	Region      string    // EventBridge: the AWS region; "" on Event Grid
	Time        time.Time // the envelope's time, or zero

	envelope []byte // all of it: what a queue carries, to be parsed again by the Worker
}

// eventBridgeSourcePrefix starts the name of every Stripe partner event
// source.
const eventBridgeSourcePrefix = "aws.partner/stripe.com/"

// ParseEventBridge parses an Amazon EventBridge event from a Stripe event
// destination (what a rule delivers to SQS, or to Lambda), snapshot or thin
// in its detail, into an Event with its Origin. It checks the shape and
// that detail-type is the event's type, and returns an error matching
// [ErrInvalidPayload] otherwise; it does not check where the event comes
// from: [Handler.Deliver] does, against [WithDestinations]. The Event's
// Payload is a copy of the detail; its Origin keeps body, which the caller
// must not modify after.
func ParseEventBridge(body []byte) (*Event, error) {
	m, err := members(body, "EventBridge event")
	if err != nil {
		return nil, err
	}
	o := &Origin{Bus: EventBridge, envelope: body}
	var version, detailType, at string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"version", &version}, {"id", &o.ID}, {"detail-type", &detailType}, {"source", &o.Source},
		{"account", &o.Account}, {"region", &o.Region}, {"time", &at}} {
		if err := stringMember(m, f.name, "EventBridge event", f.dst); err != nil {
			return nil, err
		}
	}
	if version != "0" {
		return nil, invalid("EventBridge event: version %q, want \"0\"", version)
	}
	if o.Time, err = envelopeTime(at, "EventBridge event"); err != nil {
		return nil, err
	}
	if d, ok := strings.CutPrefix(o.Source, eventBridgeSourcePrefix); ok && isDestinationID(d) {
		o.Destination = d
	}
	detail, ok := m["detail"]
	if !ok || len(detail) == 0 || detail[0] != '{' {
		return nil, invalid("EventBridge event: detail is not an object")
	}
	e := new(Event)
	if err := parseEnvelope(detail, e); err != nil {
		return nil, fmt.Errorf("EventBridge event's detail: %w", err)
	}
	if detailType != string(e.Type) {
		return nil, invalid("EventBridge event: detail-type %q but the event's type is %q", detailType, e.Type)
	}
	e.Origin = o
	return e, nil
}

// ParseEventGrid parses one CloudEvent 1.0, in the structured JSON form
// that Azure Event Grid delivers, whose data (or data_base64) is a Stripe
// event, snapshot or thin, into an Event with its Origin. The destination
// is the source's last path segment when it is an event destination id.
// It returns an error matching [ErrInvalidPayload] for anything else; it
// does not check where the event comes from: [Handler.Deliver] does,
// against [WithDestinations]. The Event's Payload is a copy of the data;
// its Origin keeps body, which the caller must not modify after.
func ParseEventGrid(body []byte) (*Event, error) {
	m, err := members(body, "CloudEvent")
	if err != nil {
		return nil, err
	}
	o := &Origin{Bus: EventGrid, envelope: body}
	var spec, typ, at string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"specversion", &spec}, {"id", &o.ID}, {"source", &o.Source}, {"type", &typ}, {"time", &at}} {
		if err := stringMember(m, f.name, "CloudEvent", f.dst); err != nil {
			return nil, err
		}
	}
	switch {
	case spec != "1.0":
		return nil, invalid("CloudEvent: specversion %q, want \"1.0\"", spec)
	case o.ID == "" || o.Source == "" || typ == "":
		return nil, invalid("CloudEvent: id, source and type are required")
	}
	if o.Time, err = envelopeTime(at, "CloudEvent"); err != nil {
		return nil, err
	}
	if d := o.Source[strings.LastIndexByte(o.Source, '/')+1:]; isDestinationID(d) {
		o.Destination = d
	}
	data, ok := m["data"]
	if b64, isB64 := m["data_base64"]; isB64 {
		if ok {
			return nil, invalid("CloudEvent: both data and data_base64")
		}
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return nil, invalid("CloudEvent: data_base64 is not a string")
		}
		if data, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, invalid("CloudEvent: data_base64: %v", err)
		}
		ok = true
	}
	if data = bytes.TrimLeft(data, " \t\r\n"); !ok || len(data) == 0 || data[0] != '{' {
		return nil, invalid("CloudEvent: data is not an object")
	}
	e := new(Event)
	if err := parseEnvelope(data, e); err != nil {
		return nil, fmt.Errorf("CloudEvent's data: %w", err)
	}
	e.Origin = o
	return e, nil
}

// parseBus parses what a queue carried for an event of bus b.
func parseBus(b Bus, payload []byte) (*Event, error) {
	switch b {
	case EventBridge:
		return ParseEventBridge(payload)
	case EventGrid:
		return ParseEventGrid(payload)
	case "":
		return ParseEvent(payload)
	}
	return nil, invalid("unknown bus %q", b)
}

// members decodes body as a JSON object, keys exact, the last occurrence
// winning, as the envelope parser does.
func members(body []byte, what string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &syntaxError{msg: what + ": " + se.Error(), off: int(se.Offset)}
		}
		return nil, invalid("%s: not a JSON object", what)
	}
	if m == nil {
		return nil, invalid("%s: null", what)
	}
	return m, nil
}

// stringMember decodes m[name], a string or null (or absent: ""), into dst.
func stringMember(m map[string]json.RawMessage, name, what string, dst *string) error {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return invalid("%s: %s is not a string", what, name)
	}
	return nil
}

// envelopeTime parses an envelope's RFC 3339 time; "" is zero.
func envelopeTime(s, what string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid("%s: time %q is not RFC 3339", what, s)
	}
	return t, nil
}

// destinationID is the form of an event destination's id.
var destinationID = regexp.MustCompile(`^ed_[A-Za-z0-9_]+$`)

func isDestinationID(s string) bool { return destinationID.MatchString(s) }

// awsAccountID is the form of an AWS account id.
var awsAccountID = regexp.MustCompile(`^[0-9]{12}$`)

// ErrUntrustedOrigin is matched by every [*OriginError].
var ErrUntrustedOrigin = errors.New("stripewebhook: event from a cloud bus source that is not trusted")

// OriginError refuses an event that came through a cloud bus from a
// destination (or AWS account) that [WithDestinations] (or
// [WithAWSAccounts]) does not name: nothing ran (403).
// errors.Is(err, ErrUntrustedOrigin) holds for it.
type OriginError struct {
	Origin Origin
	Reason string
}

func (e *OriginError) Error() string {
	return fmt.Sprintf("stripewebhook: %s event from source %q refused: %s", e.Origin.Bus, e.Origin.Source, e.Reason)
}

func (e *OriginError) Is(target error) bool { return target == ErrUntrustedOrigin }

// trust checks o against the handler's pins.
func (c *config) trust(o *Origin) error {
	refuse := func(format string, args ...any) error {
		oc := *o
		oc.envelope = nil
		return &OriginError{Origin: oc, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.destinations == nil:
		return refuse("the handler trusts no event destination (set WithDestinations)")
	case o.Destination == "":
		return refuse("the source names no Stripe event destination")
	case !c.destinations[o.Destination]:
		return refuse("destination %s is not one of WithDestinations", o.Destination)
	case o.Bus == EventBridge && c.awsAccounts != nil && !c.awsAccounts[o.Account]:
		return refuse("AWS account %q is not one of WithAWSAccounts", o.Account)
	}
	return nil
}

// TrustsBus returns nil if h can take events from a cloud bus (it has
// [WithDestinations]), and otherwise an error matching [ErrInvalidOption]
// that says so. The cloud ways in call it when they are built, so that a
// missing pin fails at start-up rather than refusing every event.
func (h *Handler) TrustsBus() error {
	if h.c.destinations == nil {
		return fmt.Errorf("%w: the Handler trusts no event destination: events from a cloud bus carry no Stripe signature, so WithDestinations must name the destinations (ed_…) to accept", ErrInvalidOption)
	}
	return nil
}
