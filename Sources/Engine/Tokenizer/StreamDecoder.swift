/// Turns a stream of tokens into text one token at a time. A character whose UTF-8 bytes are split
/// across tokens is held back until its last byte arrives; bytes that can never form a character
/// become U+FFFD as soon as that is certain.
public struct StreamDecoder {
    public let tokenizer: Tokenizer
    /// Bytes of an incomplete character at the end of what was pushed (at most 3).
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// Adds a token; returns the text it completes (possibly empty).
    public mutating func push(_ id: Int32) -> String {
        pending.append(contentsOf: tokenizer.tokenBytes(id))
        let cut = StreamDecoder.incompleteSuffixStart(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Adds several tokens.
    public mutating func push(_ ids: [Int32]) -> String {
        var s = ""
        for id in ids { s += push(id) }
        return s
    }

    /// Ends the stream: whatever is held back comes out, an unfinished character as U+FFFD.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Whether bytes are held back waiting for the rest of a character.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    /// Where a trailing incomplete-but-still-valid UTF-8 sequence starts (bytes.count if none).
    static func incompleteSuffixStart(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // The lead byte of the last sequence is at most 3 bytes back.
        var k = n - 1
        while k >= 0 && k >= n - 4 && bytes[k] & 0xC0 == 0x80 { k -= 1 }
        guard k >= 0, k >= n - 4 else { return n }
        let lead = bytes[k]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return n  // ASCII or a byte that starts nothing
        }
        let have = n - k
        guard have < need else { return n }  // complete (or over-long: invalid, decode it now)
        // The continuation bytes so far must fit the lead byte's allowed ranges.
        if have >= 2 {
            let b1 = bytes[k + 1]
            let ok: Bool
            switch lead {
            case 0xE0: ok = (0xA0...0xBF).contains(b1)
            case 0xED: ok = (0x80...0x9F).contains(b1)
            case 0xF0: ok = (0x90...0xBF).contains(b1)
            case 0xF4: ok = (0x80...0x8F).contains(b1)
            default: ok = true
            }
            if !ok { return n }
        }
        return k
    }
}
