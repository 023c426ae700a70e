package http

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Request bodies are small flat objects of string members, so they are read
// by the strict decoder below rather than by encoding/json, which allocated a
// Decoder, a reader, a field map and an error value per number or string it
// scanned: the largest cost of a request in the profile. The decoder accepts
// and refuses exactly what the json.Decoder token walk it replaces did, and
// yields the same values; FuzzDecodeObject keeps that walk as its oracle.
// In particular, like encoding/json, it replaces invalid UTF-8 and lone
// surrogate escapes with U+FFFD rather than refusing them, and it checks a
// member's name before anything after it, so the first problem in reading
// order is the one reported.

// jsonNestingDepthMax is encoding/json's bound on arrays and objects nested
// in one value. A member's value is refused whatever it holds, but the old
// decoder read it whole first and called a deeper one malformed: so does
// this one, which also keeps its recursion bounded.
const jsonNestingDepthMax = 10000

// bodyMember is one member a request body may carry: a string, or null
// where absent would do; or, where want says so, an array or an object
// (null again meaning absent), whose text raw then holds for a parser of
// its own (contents.go).
type bodyMember struct {
	name string
	want string // "" for a string, else the JSON type: "array", "object", "number"
	// raw is the unescaped value. It aliases the request body, which Fiber
	// reuses after the handler returns, unless unescaping needed a copy:
	// convert it with string() before keeping it.
	raw []byte
	set bool // a string was given: false when absent or null
	// seen: the member appeared, null included, so that a repeat is refused.
	seen bool
}

// optString is an optional string member of a request: ok is false when it
// was absent or null.
type optString struct {
	value string
	ok    bool
}

// optional copies m's value out of the request body.
func (m *bodyMember) optional() optString {
	if !m.set {
		return optString{}
	}
	return optString{value: string(m.raw), ok: true}
}

// decodeObject reads one JSON object whose members are among members (names
// matched case-sensitively, each at most once) into them. A blank body is an
// empty object. It never keeps members or body.
func decodeObject(body []byte, members []bodyMember) error {
	if isBlank(body) {
		return nil
	}
	d := jsonReader{data: body}
	c, ok := d.next()
	switch {
	case !ok:
		return errTruncatedJSON()
	case c == '[':
		return errNotAnObject()
	case c != '{':
		// A scalar is read whole first, as the old decoder's Token did, so
		// a broken one is malformed rather than merely not an object.
		if _, err := d.value(0); err != nil {
			return err
		}
		return errNotAnObject()
	}
	d.pos++
	if err := d.members(members); err != nil {
		return err
	}
	if _, more := d.next(); more {
		return badInput(fieldBody, "unexpected data after the JSON object")
	}
	return nil
}

// jsonReader walks a JSON text; pos is the next byte to read.
type jsonReader struct {
	data []byte
	pos  int
}

// next skips whitespace and peeks at the byte after it.
func (d *jsonReader) next() (byte, bool) {
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; c {
		case ' ', '\t', '\r', '\n':
			d.pos++
		default:
			return c, true
		}
	}
	return 0, false
}

// members reads the object after its '{', up to and including its '}'.
func (d *jsonReader) members(members []bodyMember) error {
	c, ok := d.next()
	if !ok {
		return errTruncatedJSON()
	}
	if c == '}' {
		d.pos++
		return nil
	}
	for {
		if c != '"' {
			return d.malformed(c, "looking for beginning of object key string")
		}
		m, err := d.member(members)
		if err != nil {
			return err
		}
		if c, ok = d.next(); !ok {
			return errTruncatedJSON()
		}
		if c != ':' {
			return d.malformedAt(d.pos, "expected colon after object key")
		}
		d.pos++
		if err := d.memberValue(m); err != nil {
			return err
		}
		if c, ok = d.next(); !ok {
			return errTruncatedJSON()
		}
		switch c {
		case '}':
			d.pos++
			return nil
		case ',':
			d.pos++
			if c, ok = d.next(); !ok {
				return errTruncatedJSON()
			}
		default:
			return d.malformed(c, "after object key:value pair")
		}
	}
}

// member reads a member's name and finds it among members.
func (d *jsonReader) member(members []bodyMember) (*bodyMember, error) {
	start := d.pos
	if err := d.skipString(); err != nil {
		return nil, err
	}
	name := unquote(d.data[start:d.pos])
	for i := range members {
		m := &members[i]
		if m.name != string(name) { // compared without a copy
			continue
		}
		if m.seen {
			return nil, badInput(m.name, "member appears more than once")
		}
		m.seen = true
		return m, nil
	}
	return nil, badInput(string(name), "unknown member (allowed: %s)", memberList(members))
}

// memberValue reads a member's value into m: a string, or null for "not
// given". Anything else is read whole, then refused by its type.
func (d *jsonReader) memberValue(m *bodyMember) error {
	d.next()
	start := d.pos
	kind, err := d.value(0)
	if err != nil {
		return err
	}
	switch {
	case kind == "null":
		return nil
	case m.want == "" && kind == "string":
		m.raw, m.set = unquote(d.data[start:d.pos]), true
		return nil
	case m.want != "" && kind == m.want:
		m.raw, m.set = d.data[start:d.pos], true
		return nil
	case m.want == "":
		return badInput(m.name, "must be a string, not %s", kind)
	}
	return badInput(m.name, "must be %s, not %s", withArticle(m.want), kind)
}

// withArticle: "an array", "a number".
func withArticle(kind string) string {
	if kind == "array" || kind == "object" {
		return "an " + kind
	}
	return "a " + kind
}

// value reads one JSON value at depth (the arrays and objects around it
// within the member) and names its type as encoding/json's type errors do.
// A number or a literal ends at the first byte that cannot continue it,
// whatever that byte is: what follows is the caller's to judge.
func (d *jsonReader) value(depth int) (kind string, err error) {
	c, ok := d.next()
	if !ok {
		return "", errTruncatedJSON()
	}
	switch {
	case c == '"':
		return "string", d.skipString()
	case c == '-' || '0' <= c && c <= '9':
		return "number", d.skipNumber()
	case c == 't':
		return "bool", d.skipLiteral("true")
	case c == 'f':
		return "bool", d.skipLiteral("false")
	case c == 'n':
		return "null", d.skipLiteral("null")
	case c == '[' || c == '{':
		if depth == jsonNestingDepthMax {
			return "", d.malformed(c, "exceeded max depth")
		}
		d.pos++
		if c == '[' {
			return "array", d.skipArray(depth + 1)
		}
		return "object", d.skipObject(depth + 1)
	}
	return "", d.malformed(c, "looking for beginning of value")
}

func (d *jsonReader) skipArray(depth int) error {
	c, ok := d.next()
	if !ok {
		return errTruncatedJSON()
	}
	if c == ']' {
		d.pos++
		return nil
	}
	for {
		if _, err := d.value(depth); err != nil {
			return err
		}
		c, ok := d.next()
		if !ok {
			return errTruncatedJSON()
		}
		d.pos++
		switch c {
		case ']':
			return nil
		case ',':
		default:
			return d.malformedAt(d.pos-1, "after array element")
		}
	}
}

func (d *jsonReader) skipObject(depth int) error {
	c, ok := d.next()
	if !ok {
		return errTruncatedJSON()
	}
	if c == '}' {
		d.pos++
		return nil
	}
	for {
		if c != '"' {
			return d.malformed(c, "looking for beginning of object key string")
		}
		if err := d.skipString(); err != nil {
			return err
		}
		if c, ok = d.next(); !ok {
			return errTruncatedJSON()
		}
		if c != ':' {
			return d.malformed(c, "after object key")
		}
		d.pos++
		if _, err := d.value(depth); err != nil {
			return err
		}
		if c, ok = d.next(); !ok {
			return errTruncatedJSON()
		}
		d.pos++
		switch c {
		case '}':
			return nil
		case ',':
			if c, ok = d.next(); !ok {
				return errTruncatedJSON()
			}
		default:
			return d.malformedAt(d.pos-1, "after object key:value pair")
		}
	}
}

// skipString reads a string literal, d.pos at its opening quote, checking
// its escapes; any other byte from 0x20 up is taken as it is.
func (d *jsonReader) skipString() error {
	for i := d.pos + 1; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			return nil
		case c < 0x20:
			return d.malformedAt(i, "in string literal")
		case c == '\\':
			i++
			if i == len(d.data) {
				return errTruncatedJSON()
			}
			switch d.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					i++
					if i == len(d.data) {
						return errTruncatedJSON()
					}
					if !isHex(d.data[i]) {
						return d.malformedAt(i, "in \\u hexadecimal character escape")
					}
				}
			default:
				return d.malformedAt(i, "in string escape code")
			}
		}
	}
	return errTruncatedJSON()
}

// skipNumber reads a number by RFC 8259's grammar. It ends, complete, at the
// first byte that cannot continue it, as encoding/json's scanner does, and
// at the end of the body too.
func (d *jsonReader) skipNumber() error {
	i := d.pos
	if d.data[i] == '-' {
		i++
	}
	switch {
	case i == len(d.data):
		return errTruncatedJSON()
	case d.data[i] == '0':
		i++
	case '1' <= d.data[i] && d.data[i] <= '9':
		i = skipDigits(d.data, i)
	default:
		return d.malformedAt(i, "in numeric literal")
	}
	if i < len(d.data) && d.data[i] == '.' {
		i++
		if i == len(d.data) {
			return errTruncatedJSON()
		}
		if !isDigit(d.data[i]) {
			return d.malformedAt(i, "after decimal point in numeric literal")
		}
		i = skipDigits(d.data, i)
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if i == len(d.data) {
			return errTruncatedJSON()
		}
		if !isDigit(d.data[i]) {
			return d.malformedAt(i, "in exponent of numeric literal")
		}
		i = skipDigits(d.data, i)
	}
	d.pos = i
	return nil
}

func (d *jsonReader) skipLiteral(lit string) error {
	for i := 1; i < len(lit); i++ {
		at := d.pos + i
		if at == len(d.data) {
			return errTruncatedJSON()
		}
		if d.data[at] != lit[i] {
			return d.malformedAt(at, "in literal "+lit+" (expecting "+quoteByte(lit[i])+")")
		}
	}
	d.pos += len(lit)
	return nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// unquote returns the text of a string literal that skipString accepted:
// a slice of it when nothing needs unescaping, else a copy with escapes
// resolved and, as encoding/json does, every invalid UTF-8 byte and every
// escaped surrogate that is not half of a pair replaced by U+FFFD.
func unquote(lit []byte) []byte {
	s := lit[1 : len(lit)-1]
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			return unescape(s, i)
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return unescape(s, i)
		}
		i += size
	}
	return s
}

// unescape finishes unquote's work from s[i], the first byte that needs it.
func unescape(s []byte, i int) []byte {
	b := make([]byte, i, len(s)+utf8.UTFMax)
	copy(b, s[:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\' && s[i+1] == 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, hex4(s[i+2:])); pair != unicode.ReplacementChar {
						r = pair
						i += 6
					} else {
						r = unicode.ReplacementChar
					}
				} else {
					r = unicode.ReplacementChar
				}
			}
			b = utf8.AppendRune(b, r)
		case c == '\\':
			b = append(b, unescapedByte(s[i+1]))
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:]) // RuneError for an invalid byte
			b = utf8.AppendRune(b, r)
			i += size
		}
	}
	return b
}

func unescapedByte(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // '"', '\\', '/'
}

// hex4 reads four hex digits skipString has checked.
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

func errTruncatedJSON() error { return badInput(fieldBody, "truncated JSON") }

func errNotAnObject() error { return badInput(fieldBody, "must be a JSON object") }

func (d *jsonReader) malformed(c byte, context string) error {
	return badInput(fieldBody, "malformed JSON at byte %d: invalid character %s %s", d.pos, quoteByte(c), context)
}

func (d *jsonReader) malformedAt(pos int, context string) error {
	if context == "expected colon after object key" {
		return badInput(fieldBody, "malformed JSON at byte %d: %s", pos, context)
	}
	return badInput(fieldBody, "malformed JSON at byte %d: invalid character %s %s", pos, quoteByte(d.data[pos]), context)
}

// quoteByte spells a byte as encoding/json's syntax errors do.
func quoteByte(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// memberList names the allowed members for an unknown-member problem.
func memberList(members []bodyMember) string {
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = strconv.Quote(m.name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
