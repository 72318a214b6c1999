// GPT-2's byte-to-unicode table: byte-level BPE vocabularies spell every byte as one printable
// character. Printable Latin-1 bytes (! to ~, ¡ to ¬, ® to ÿ) stand for themselves; the other 68
// bytes, in order, take U+0100, U+0101, ... (so space is "Ġ" U+0120 and newline "Ċ" U+010A).

enum ByteLevel {
    /// Scalar value standing for each byte.
    static let scalarOfByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// Byte for a scalar of the table, or nil (scalars below U+0144 only).
    static func byte(of scalar: UInt32) -> UInt8? {
        guard scalar < UInt32(byteOfScalar.count) else { return nil }
        let b = byteOfScalar[Int(scalar)]
        return b < 0 ? nil : UInt8(b)
    }

    private static let byteOfScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 256 + 68)
        for (b, s) in scalarOfByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The vocabulary spelling of raw bytes.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(scalarOfByte[Int(b)])!) }
        return String(s)
    }

    /// The raw bytes of a vocabulary spelling, or nil if some character is not in the table.
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            guard let b = byte(of: s.value) else { return nil }
            out.append(b)
        }
        return out
    }
}
