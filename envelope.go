package stripewebhook

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/stripe/stripe-go/v82"
)

// This file decodes the event envelope in one pass over the body. It accepts
// and rejects exactly what encoding/json accepts and rejects when the body is
// decoded into map[string]json.RawMessage and the envelope fields into their
// Go types (a fuzz test holds it to that), with one deliberate difference:
// keys match exactly, not case-insensitively. data.object is validated but
// not decoded, and nothing is allocated in proportion to the body.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// syntaxError is malformed JSON. It matches ErrInvalidPayload.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("%v: body is not valid JSON: %s at offset %d", ErrInvalidPayload, e.msg, e.off)
}

func (e *syntaxError) Is(target error) bool { return target == ErrInvalidPayload }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPayload}, args...)...)
}

type scanner struct {
	b     []byte
	i     int
	arena strArena // the envelope's strings, until flush
}

// Slots of the strArena: one per envelope string that may be kept.
const (
	slotID = iota
	slotAccount
	slotContext
	slotRequestID
	slotRequestKey
	slotReasonID
	slotReasonKey
	slotRelatedID
	slotRelatedType
	slotRelatedURL
	arenaSlots
)

// strArena collects the envelope's plain (unescaped) string values as
// they are scanned, and makes them one allocation at the end: an event
// costs one allocation for its id, account, request and related object.
// A slot holds the last occurrence of its field, as encoding/json keeps.
// It keeps no pointers (they would make the envelope escape): flush finds
// each slot's destination itself.
type strArena struct {
	raw     [arenaSlots][]byte
	pending [arenaSlots]bool
}

// drop forgets the slot's pending value: a later occurrence replaces it.
func (a *strArena) drop(slot int) { a.raw[slot], a.pending[slot] = nil, false }

// flush sets every pending string of e and env, from one allocation.
func (a *strArena) flush(e *Event, env *envelope) {
	n := 0
	for _, r := range a.raw {
		n += len(r)
	}
	buf := make([]byte, 0, n)
	for _, r := range a.raw {
		buf = append(buf, r...)
	}
	// buf is never written again: the strings may share it.
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	off := 0
	for slot, r := range a.raw {
		if a.pending[slot] {
			*slotString(slot, e, env) = all[off : off+len(r)]
		}
		off += len(r)
	}
}

// slotString is where a slot's string goes.
func slotString(slot int, e *Event, env *envelope) *string {
	switch slot {
	case slotID:
		return &e.ID
	case slotAccount:
		return &e.Account
	case slotContext:
		return &env.context
	case slotRequestID:
		return &e.Request.ID
	case slotRequestKey:
		return &e.Request.IdempotencyKey
	case slotReasonID:
		return &env.reason.ID
	case slotReasonKey:
		return &env.reason.IdempotencyKey
	case slotRelatedID:
		return &env.related.ID
	case slotRelatedType:
		return &env.related.Type
	}
	return &env.related.URL
}

// keptString decodes a string or null into *dst, deferring a plain string
// to the arena's single allocation.
func (s *scanner) keptString(slot int, name string, depth int, dst *string) error {
	s.arena.drop(slot)
	if s.kind() == '"' {
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		if plain {
			s.arena.raw[slot], s.arena.pending[slot] = raw, true
		} else {
			*dst = stringValue(raw, false)
		}
		return nil
	}
	return s.stringField(name, depth, dst)
}

func (s *scanner) errAt(msg string) error {
	return &syntaxError{msg, s.i}
}

func (s *scanner) ws() { s.i = skipWS(s.b, s.i) }

// skipWS returns the index of the first byte of b from i on that is not
// JSON white space.
func skipWS(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipSpaces(b, i)
}

// skipSpaces is skipWS past its first byte. Pretty-printed JSON (Stripe's)
// puts a newline and an indentation between tokens: eight bytes at a time.
func skipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' {
		if i+8 <= len(b) {
			if m := tokenMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				return i + bits.TrailingZeros64(m)>>3
			}
			i += 8
			continue
		}
		switch b[i] {
		case ' ', '\n', '\t', '\r':
			i++
			continue
		}
		break
	}
	return i
}

// tokenMask sets the high bit of each byte of w (little-endian) that is not
// JSON white space (' ', '\n', '\t', '\r'), and no other bit; like
// specialMask, each byte on its own.
func tokenMask(w uint64) uint64 {
	const lo7 = 0x7f7f7f7f7f7f7f7f
	const ones = 0x0101010101010101
	const high = 0x8080808080808080
	// A byte of x is zero exactly when ((x&lo7)+lo7)|x has its high bit
	// clear: a byte is white space when one of the four is zero.
	sp, nl, tab, cr := w^(ones*' '), w^(ones*'\n'), w^(ones*'\t'), w^(ones*'\r')
	return (((sp & lo7) + lo7) | sp) & (((nl & lo7) + lo7) | nl) & (((tab & lo7) + lo7) | tab) & (((cr & lo7) + lo7) | cr) & high
}

// str scans a string starting at the opening quote and returns its raw
// contents (between the quotes) and whether they need unescaping.
func (s *scanner) str() (raw []byte, plain bool, err error) {
	end, plain, msg := scanString(s.b, s.i)
	if msg != "" {
		s.i = end
		return nil, false, s.errAt(msg)
	}
	raw, s.i = s.b[s.i+1:end-1], end
	return raw, plain, nil
}

// scanString scans the string whose opening quote is at b[i] and returns
// the index after its closing quote and whether its contents need
// unescaping, or, when msg is not "", where and why it is invalid.
func scanString(b []byte, i int) (end int, plain bool, msg string) {
	i++
	plain = true
	for {
		// Fast path: eight bytes at a time up to the first '"', '\\', control
		// character or non-ASCII byte.
		for i+8 <= len(b) {
			if m := specialMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return i, false, "unterminated string"
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, plain, ""
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				return i, false, "unterminated string"
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 > len(b) {
					return len(b), false, "unterminated string"
				}
				for k := 1; k <= 4; k++ {
					if _, ok := fromHex(b[i+k]); !ok {
						return i + k, false, "invalid \\u escape"
					}
				}
				i += 5
			default:
				return i, false, "invalid escape"
			}
		case c < 0x20:
			return i, false, "control character in string"
		case c >= utf8.RuneSelf:
			// encoding/json replaces invalid UTF-8 with U+FFFD, so the
			// value differs from the bytes: decode it the slow way.
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			i += size
		default:
			i++
		}
	}
}

// specialMask sets the high bit of each byte of w (little-endian) that is
// '"', '\\', below 0x20 or at or above 0x80, and no other bit. Each byte is
// computed on its own, without carries, so the lowest set bit marks the
// first special byte.
func specialMask(w uint64) uint64 {
	const lo7 = 0x7f7f7f7f7f7f7f7f
	const ones = 0x0101010101010101
	const high = 0x8080808080808080
	quote := w ^ (ones * '"')
	bslash := w ^ (ones * '\\')
	// A byte of x is zero exactly when ((x&lo7)+lo7)|x has its high bit clear.
	zeroQ := ^(((quote & lo7) + lo7) | quote) & high
	zeroB := ^(((bslash & lo7) + lo7) | bslash) & high
	ctrl := ^((w & lo7) + (ones * (0x80 - 0x20))) & high // low 7 bits below 0x20
	return zeroQ | zeroB | ctrl | (w & high)
}

// stringValue decodes the raw contents of a JSON string as encoding/json
// would.
func stringValue(raw []byte, plain bool) string {
	if plain {
		return string(raw)
	}
	var v string
	// raw came from str, so this cannot fail; quoting it again is the
	// simplest way to reuse encoding/json's unescaping exactly.
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	_ = json.Unmarshal(q, &v)
	return v
}

// scanNumber scans the number that starts at b[i] and returns the index
// after it, or, when msg is not "", where it is invalid.
func scanNumber(b []byte, i int) (end int, msg string) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, "invalid number"
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, "invalid number"
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, "invalid number"
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i, ""
}

func (s *scanner) literal(lit string) error {
	if !hasLiteral(s.b, s.i, lit) {
		return s.errAt("invalid literal")
	}
	s.i += len(lit)
	return nil
}

// hasLiteral reports whether b holds lit at i.
func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// value validates one JSON value of any kind, nested to depth levels
// already, and returns its bytes. It keeps its position in a local, not
// in s, until it returns: most of a parse is this loop (data.object), and
// so is a third of what a Worker does for a queued event.
func (s *scanner) value(depth int) ([]byte, error) {
	b, i := s.b, s.i
	start := i
	// stack holds one bit per open container: 1 for an object.
	var stack [maxDepth/64 + 1]uint64
	top := 0 // containers open inside this value
	var msg string
	for {
		// A value.
		i = skipWS(b, i)
		if i >= len(b) {
			msg = "unexpected end of input"
			goto fail
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth+top+1 > maxDepth {
				msg = "exceeded max depth"
				goto fail
			}
			i++
			top++
			if w, bit := (top-1)/64, uint((top-1)%64); c == '{' {
				stack[w] |= 1 << bit
			} else {
				stack[w] &^= 1 << bit
			}
			i = skipWS(b, i)
			if i < len(b) && ((c == '{' && b[i] == '}') || (c == '[' && b[i] == ']')) {
				i++
				top--
				break
			}
			if c == '{' {
				if i, _, _, msg = scanKey(b, i); msg != "" {
					goto fail
				}
			}
			continue
		case c == '"':
			if i, _, msg = scanString(b, i); msg != "" {
				goto fail
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if i, msg = scanNumber(b, i); msg != "" {
				goto fail
			}
		case c == 't' || c == 'f' || c == 'n':
			lit := "null"
			if c == 't' {
				lit = "true"
			} else if c == 'f' {
				lit = "false"
			}
			if !hasLiteral(b, i, lit) {
				msg = "invalid literal"
				goto fail
			}
			i += len(lit)
		default:
			msg = "invalid character"
			goto fail
		}
		// After a value: close containers or move to the next element.
		for {
			if top == 0 {
				s.i = i
				return b[start:i], nil
			}
			i = skipWS(b, i)
			if i >= len(b) {
				msg = "unexpected end of input"
				goto fail
			}
			c := b[i]
			obj := stack[(top-1)/64]>>((top-1)%64)&1 == 1
			if c == ',' {
				i++
				if obj {
					if i, _, _, msg = scanKey(b, skipWS(b, i)); msg != "" {
						goto fail
					}
				}
				break
			}
			if (obj && c == '}') || (!obj && c == ']') {
				i++
				top--
				continue
			}
			msg = "invalid character after value"
			goto fail
		}
	}
fail:
	s.i = i
	return nil, s.errAt(msg)
}

// scanKey scans `"name" :` from b[i] and returns the index after the ':'
// and the name's raw contents with whether they need unescaping, or, when
// msg is not "", where and why it is invalid.
func scanKey(b []byte, i int) (end int, name []byte, plain bool, msg string) {
	if i >= len(b) || b[i] != '"' {
		return i, nil, false, "expected object key"
	}
	start := i
	if i, plain, msg = scanString(b, i); msg != "" {
		return i, nil, false, msg
	}
	name = b[start+1 : i-1]
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, nil, false, "expected ':' after object key"
	}
	return i + 1, name, plain, ""
}

// keyName scans `"name" :` and returns the raw name.
func (s *scanner) keyName() ([]byte, bool, error) {
	end, name, plain, msg := scanKey(s.b, s.i)
	s.i = end
	if msg != "" {
		return nil, false, s.errAt(msg)
	}
	return name, plain, nil
}

// Objects are walked without callbacks (a closure would escape and
// allocate):
//
//	more, err := s.open(depth)
//	for more {
//		key, err := s.member() // positioned at the value, which must be consumed
//		…
//		more, err = s.next()
//	}

// open consumes the '{' of an object at depth and reports whether it has
// members.
func (s *scanner) open(depth int) (bool, error) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false, s.errAt("expected object")
	}
	if depth+1 > maxDepth {
		return false, s.errAt("exceeded max depth")
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return false, nil
	}
	return true, nil
}

// member reads a key and its ':'. The key aliases the body when it has no
// escapes: it is only compared, never kept.
func (s *scanner) member() (string, error) {
	s.ws()
	raw, plain, err := s.keyName()
	if err != nil {
		return "", err
	}
	s.ws()
	if plain {
		return unsafeString(raw), nil
	}
	return stringValue(raw, false), nil
}

// next consumes the ',' or '}' after a member and reports whether another
// member follows.
func (s *scanner) next() (bool, error) {
	s.ws()
	if s.i >= len(s.b) {
		return false, s.errAt("unexpected end of input")
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, nil
	case '}':
		s.i++
		return false, nil
	}
	return false, s.errAt("invalid character after object member")
}

// kind returns the first byte of the next value, after white space.
func (s *scanner) kind() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// Every field helper below follows the reference decoding: members go into
// a map, last occurrence wins, and the field is then decoded into its Go
// type, null giving the zero value. They return a *syntaxError (wrapped) for
// malformed JSON, which stops the scan, and any other error for a value of
// the wrong type, which the caller records for that field only.

// stringField decodes a string or null into *dst.
func (s *scanner) stringField(name string, depth int, dst *string) error {
	switch s.kind() {
	case '"':
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		*dst = stringValue(raw, plain)
		return nil
	case 'n':
		*dst = ""
		return s.literal("null")
	}
	if _, err := s.value(depth); err != nil {
		return err
	}
	return invalid("%s is not a string", name)
}

// typeField decodes the event type, without allocating for known types.
func (s *scanner) typeField(depth int, dst *stripe.EventType) error {
	if s.kind() == '"' {
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		*dst = internType(raw, plain)
		return nil
	}
	var str string
	err := s.stringField("type", depth, &str)
	*dst = stripe.EventType(str)
	return err
}

// apiVersion decodes api_version without allocating for stripe-go's own.
func (s *scanner) apiVersion(depth int, dst *string) error {
	if s.kind() == '"' {
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		if plain && string(raw) == stripe.APIVersion {
			*dst = stripe.APIVersion
		} else {
			*dst = stringValue(raw, plain)
		}
		return nil
	}
	return s.stringField("api_version", depth, dst)
}

func (s *scanner) boolField(name string, depth int, dst *bool) error {
	*dst = false
	switch s.kind() {
	case 't':
		*dst = true
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	if _, err := s.value(depth); err != nil {
		return err
	}
	return invalid("%s is not a boolean", name)
}

// openOrNull opens an object, or consumes null, and reports whether an
// object with members follows. Anything else is a type error.
func (s *scanner) openOrNull(name string, depth int) (bool, error) {
	switch s.kind() {
	case '{':
		return s.open(depth)
	case 'n':
		return false, s.literal("null")
	}
	if _, err := s.value(depth); err != nil {
		return false, err
	}
	return false, invalid("%s is not an object", name)
}

// fieldErrs holds the type error of each field's last occurrence.
type fieldErrs [12]error

// set records err for field i, or returns it if it is a syntax error.
func (f *fieldErrs) set(i int, err error) error {
	if _, ok := err.(*syntaxError); ok {
		return err
	}
	f[i] = err
	return nil
}

func (f *fieldErrs) first() error {
	for _, err := range f {
		if err != nil {
			return err
		}
	}
	return nil
}

// thinObject is the "object" of a thin event (an event destination's
// notification); a snapshot event's is "event".
const thinObject = "v2.core.event"

// envelope holds what parseEnvelope reads before it knows the event's
// kind, which the "object" field, wherever it stands, decides.
type envelope struct {
	object     string
	created    []byte // the raw value: an integer for a snapshot, an RFC 3339 string for a thin event
	context    string // a thin event's connected account
	reason     EventRequest
	related    stripe.RelatedObject
	hasRelated bool
}

// parseEnvelope decodes body into e. e must be zero.
func parseEnvelope(body []byte, e *Event) error {
	s := scanner{b: body}
	if s.kind() != '{' {
		if s.i >= len(body) {
			return invalid("empty body")
		}
		if _, err := s.value(0); err != nil {
			return err
		}
		return invalid("body is not a JSON object")
	}
	var errs fieldErrs
	var env envelope
	more, err := s.open(0)
	for err == nil && more {
		var key string
		if key, err = s.member(); err != nil {
			break
		}
		switch key {
		case "id":
			err = errs.set(0, s.keptString(slotID, "id", 1, &e.ID))
		case "type":
			err = errs.set(1, s.typeField(1, &e.Type))
		case "api_version":
			err = errs.set(2, s.apiVersion(1, &e.APIVersion))
		case "account":
			err = errs.set(3, s.keptString(slotAccount, "account", 1, &e.Account))
		case "livemode":
			err = errs.set(4, s.boolField("livemode", 1, &e.Livemode))
		case "created":
			env.created, err = s.value(1)
		case "request":
			err = errs.set(6, s.request(&e.Request))
		case "data":
			err = errs.set(7, s.data(e))
		case "object":
			err = errs.set(8, s.objectField(1, &env.object))
		case "context":
			err = errs.set(9, s.keptString(slotContext, "context", 1, &env.context))
		case "reason":
			err = errs.set(10, s.reason(&env.reason))
		case "related_object":
			err = errs.set(11, s.relatedObject(&env))
		default:
			_, err = s.value(1)
		}
		if err == nil {
			more, err = s.next()
		}
	}
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(body) {
		return s.errAt("invalid character after top-level value")
	}
	s.arena.flush(e, &env)
	if env.object == thinObject {
		e.Kind = Thin
		e.Account, e.Request = env.context, env.reason
		if env.hasRelated {
			e.related = env.related
			e.Related = &e.related
		}
		errs[5] = thinCreated(env.created, &e.Created)
	} else {
		errs[5] = snapshotCreated(env.created, &e.Created)
	}
	if err := errs.first(); err != nil {
		return err
	}
	if e.ID == "" {
		return invalid("event has no id")
	}
	if e.Type == "" {
		return invalid("event has no type")
	}
	e.Payload = body
	return nil
}

// snapshotCreated decodes a snapshot event's created: Unix seconds, or
// null.
func snapshotCreated(raw []byte, dst *int64) error {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	n, err := strconv.ParseInt(unsafeString(raw), 10, 64)
	if err != nil {
		return invalid("created is not an integer")
	}
	*dst = n
	return nil
}

// thinCreated decodes a thin event's created, an RFC 3339 time, into Unix
// seconds, as time.Time's UnmarshalJSON reads it (null is no time).
func thinCreated(raw []byte, dst *int64) error {
	if raw == nil {
		return nil
	}
	var t time.Time
	if err := t.UnmarshalJSON(raw); err != nil {
		return invalid("created is not an RFC 3339 time")
	}
	if !t.IsZero() {
		*dst = t.Unix()
	}
	return nil
}

// objectField decodes the top-level "object", without allocating for the
// two values Stripe sends.
func (s *scanner) objectField(depth int, dst *string) error {
	if s.kind() == '"' {
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		switch {
		case plain && string(raw) == "event":
			*dst = "event"
		case plain && string(raw) == thinObject:
			*dst = thinObject
		default:
			*dst = stringValue(raw, plain)
		}
		return nil
	}
	return s.stringField("object", depth, dst)
}

// reason decodes a thin event's reason: {"type": "request", "request":
// {"id", "idempotency_key"}}.
func (s *scanner) reason(dst *EventRequest) error {
	*dst = EventRequest{}
	s.arena.drop(slotReasonID) // a later reason without a request has none
	s.arena.drop(slotReasonKey)
	var errs fieldErrs
	more, err := s.openOrNull("reason", 1)
	for err == nil && more {
		var key string
		if key, err = s.member(); err != nil {
			break
		}
		switch key {
		case "type":
			err = errs.set(0, s.skipString("reason.type", 2))
		case "request":
			err = errs.set(1, s.requestObject("reason.request", 2, dst))
		default:
			_, err = s.value(2)
		}
		if err == nil {
			more, err = s.next()
		}
	}
	if err != nil {
		return err
	}
	return errs.first()
}

// relatedObject decodes a thin event's related_object, or null, into
// env.related.
func (s *scanner) relatedObject(env *envelope) error {
	for slot := slotRelatedID; slot <= slotRelatedURL; slot++ {
		s.arena.drop(slot)
	}
	env.related, env.hasRelated = stripe.RelatedObject{}, false
	if s.kind() == 'n' {
		return s.literal("null")
	}
	var errs fieldErrs
	more, err := s.openOrNull("related_object", 1)
	env.hasRelated = err == nil
	dst := &env.related
	for err == nil && more {
		var key string
		if key, err = s.member(); err != nil {
			break
		}
		switch key {
		case "id":
			err = errs.set(0, s.keptString(slotRelatedID, "related_object.id", 2, &dst.ID))
		case "type":
			err = errs.set(1, s.keptString(slotRelatedType, "related_object.type", 2, &dst.Type))
		case "url":
			err = errs.set(2, s.keptString(slotRelatedURL, "related_object.url", 2, &dst.URL))
		default:
			_, err = s.value(2)
		}
		if err == nil {
			more, err = s.next()
		}
	}
	if err != nil {
		return err
	}
	return errs.first()
}

func (s *scanner) request(dst *EventRequest) error {
	*dst = EventRequest{}
	if s.kind() == '"' {
		// API versions before 2017-05-25 sent the request ID as a string.
		s.arena.drop(slotRequestKey)
		return s.keptString(slotRequestID, "request", 1, &dst.ID)
	}
	return s.requestObject("request", 1, dst)
}

// skipString validates a string or null without decoding it.
func (s *scanner) skipString(name string, depth int) error {
	switch s.kind() {
	case '"':
		_, _, err := s.str()
		return err
	case 'n':
		return s.literal("null")
	}
	if _, err := s.value(depth); err != nil {
		return err
	}
	return invalid("%s is not a string", name)
}

// requestObject decodes {"id", "idempotency_key"}, or null, at depth: a
// snapshot event's "request" or a thin event's "reason.request".
func (s *scanner) requestObject(name string, depth int, dst *EventRequest) error {
	idName, keyName := "request.id", "request.idempotency_key" // constants: no allocation
	idSlot, keySlot := slotRequestID, slotRequestKey
	if name != "request" {
		idName, keyName = "reason.request.id", "reason.request.idempotency_key"
		idSlot, keySlot = slotReasonID, slotReasonKey
	}
	s.arena.drop(idSlot)
	s.arena.drop(keySlot)
	*dst = EventRequest{}
	var errs fieldErrs
	more, err := s.openOrNull(name, depth)
	for err == nil && more {
		var key string
		if key, err = s.member(); err != nil {
			break
		}
		switch key {
		case "id":
			err = errs.set(0, s.keptString(idSlot, idName, depth+1, &dst.ID))
		case "idempotency_key":
			err = errs.set(1, s.keptString(keySlot, keyName, depth+1, &dst.IdempotencyKey))
		default:
			_, err = s.value(depth + 1)
		}
		if err == nil {
			more, err = s.next()
		}
	}
	if err != nil {
		return err
	}
	return errs.first()
}

func (s *scanner) data(e *Event) error {
	e.Object, e.PreviousAttributes = nil, nil
	more, err := s.openOrNull("data", 1)
	for err == nil && more {
		var key string
		if key, err = s.member(); err != nil {
			break
		}
		switch key {
		case "object":
			e.Object, err = s.value(2)
		case "previous_attributes":
			e.PreviousAttributes, err = s.value(2)
		default:
			_, err = s.value(2)
		}
		if err == nil {
			more, err = s.next()
		}
	}
	return err
}

// objectName returns the top-level "object" field of a JSON object, or "".
func objectName(raw []byte) string { return topString(raw, "object") }

// objectID returns the top-level "id" field of a JSON object, or "".
func objectID(raw []byte) string { return topString(raw, "id") }

// topString returns the top-level string field name of a JSON object, or
// "", stopping at its first occurrence (Stripe puts "id" first and "object"
// second), without decoding the rest.
func topString(raw []byte, name string) string {
	s := scanner{b: raw}
	more, err := s.open(0)
	for err == nil && more {
		var key string
		if key, err = s.member(); err != nil {
			return ""
		}
		if key == name && s.kind() == '"' {
			r, plain, err := s.str()
			if err != nil {
				return ""
			}
			return stringValue(r, plain)
		}
		if _, err = s.value(1); err == nil {
			more, err = s.next()
		}
	}
	return ""
}
