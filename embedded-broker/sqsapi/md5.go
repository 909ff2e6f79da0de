package sqsapi

import (
	"crypto/md5" //nolint:gosec // MD5 is what the SQS protocol specifies for these digests
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// md5Hex is the hex MD5 of b, as SQS reports MD5OfMessageBody.
func md5Hex(b []byte) string {
	sum := md5.Sum(b) //nolint:gosec // protocol-mandated
	return hex.EncodeToString(sum[:])
}

// Transport types of the SQS attribute digest.
const (
	transportString byte = 1 // String and Number data types
	transportBinary byte = 2
)

// md5OfAttributes computes MD5OfMessageAttributes as the SQS developer guide
// specifies: attributes sorted by name; for each, the 4-byte big-endian
// length and bytes of the name, then of the data type, then one transport
// byte (1 for String/Number, 2 for Binary), then the length and bytes of the
// value; MD5 over the concatenation. It returns "" for no attributes, as
// SQS omits the field then. attrs need not be sorted.
func md5OfAttributes(attrs []queue.Attribute) string {
	if len(attrs) == 0 {
		return ""
	}
	sorted := attrs
	if !slices.IsSortedFunc(attrs, compareAttributes) {
		sorted = slices.SortedFunc(slices.Values(attrs), compareAttributes)
	}
	h := md5.New() //nolint:gosec // protocol-mandated
	var buf []byte
	for _, a := range sorted {
		buf = buf[:0]
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(a.Name)))
		buf = append(buf, a.Name...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(a.DataType)))
		buf = append(buf, a.DataType...)
		if strings.HasPrefix(a.DataType, "Binary") {
			buf = append(buf, transportBinary)
		} else {
			buf = append(buf, transportString)
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(a.Value)))
		buf = append(buf, a.Value...)
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func compareAttributes(a, b queue.Attribute) int { return strings.Compare(a.Name, b.Name) }
