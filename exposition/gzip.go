package exposition

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"
)

// compressedText is text kept compressed between scrapes: raw DEFLATE blocks that end on a
// byte boundary without a final block (a sync flush), with the CRC-32 and length of the text.
// A response that sends gzip completes them into one gzip member with its own text: the blocks
// of a second compressor may follow, since they refer to nothing before them, and the trailer's
// CRC-32 continues over both texts. So the certificate series are compressed once per change,
// not per scrape, and kept at a tenth of their size.
type compressedText struct {
	blocks []byte
	crc    uint32
	size   int
}

func compress(text []byte) compressedText {
	var buf bytes.Buffer
	fw := flateWriters.Get().(*flate.Writer)
	fw.Reset(&buf)
	_, _ = fw.Write(text) // to memory: cannot fail
	_ = fw.Flush()
	flateWriters.Put(fw)
	return compressedText{blocks: buf.Bytes(), crc: crc32.ChecksumIEEE(text), size: len(text)}
}

var flateWriters = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(nil, flate.BestSpeed)
	return fw
}}

// gzipHeader is a gzip member header: deflate, no name, no time, unknown OS (RFC 1952).
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// writeGzip writes one gzip member holding the text followed by rest.
func (c compressedText) writeGzip(w io.Writer, rest []byte) error {
	if _, err := w.Write(gzipHeader); err != nil {
		return err
	}
	if _, err := w.Write(c.blocks); err != nil {
		return err
	}
	return c.writeGzipTail(w, rest)
}

// writeGzipTail writes what follows the header and the kept blocks: rest compressed, the final
// block, and the trailer over both texts.
func (c compressedText) writeGzipTail(w io.Writer, rest []byte) error {
	fw := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(fw)
	fw.Reset(w)
	if _, err := fw.Write(rest); err != nil {
		return err
	}
	if err := fw.Close(); err != nil { // the final block
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc32.Update(c.crc, crc32.IEEETable, rest))
	binary.LittleEndian.PutUint32(trailer[4:], uint32(c.size+len(rest)))
	_, err := w.Write(trailer[:])
	return err
}

// emptyFinalBlock ends a DEFLATE stream: BFINAL 1, fixed codes, end of block.
var emptyFinalBlock = []byte{0x03, 0x00}

// writePlain writes the text, inflated, for a client that does not take gzip.
func (c compressedText) writePlain(w io.Writer) error {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(c.blocks), bytes.NewReader(emptyFinalBlock)))
	defer r.Close()
	_, err := io.Copy(w, r)
	return err
}
