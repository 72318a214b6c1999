// Unicode character classes for the pre-tokenizers: the general-category groups the split
// patterns name (\p{L}, \p{N}, \p{P}, ...) plus \s, looked up per scalar from a table built once.
// Categories come from the Swift standard library's Unicode data, limited to the Unicode version
// of llama.cpp's tables so that newer letters split text the way llama.cpp does.

/// Class bits of one Unicode scalar, as the pre-tokenizer patterns see it.
struct CharClass: OptionSet, Sendable {
    let rawValue: UInt8

    static let letter = CharClass(rawValue: 1 << 0)       // \p{L}: Lu Ll Lt Lm Lo
    static let number = CharClass(rawValue: 1 << 1)       // \p{N}: Nd Nl No
    static let whitespace = CharClass(rawValue: 1 << 2)   // \s: the White_Space property
    static let punctuation = CharClass(rawValue: 1 << 3)  // \p{P}
    static let symbol = CharClass(rawValue: 1 << 4)       // \p{S}
    static let mark = CharClass(rawValue: 1 << 5)         // \p{M}

    /// Classes of `scalar` (any value; surrogates and values past U+10FFFF have none).
    @inline(__always)
    static func of(_ scalar: UInt32) -> CharClass {
        if scalar < 0x10000 { return CharClass(rawValue: bmp[Int(scalar)]) }
        return compute(scalar)
    }

    /// The Basic Multilingual Plane, precomputed (64 KB).
    private static let bmp: [UInt8] = (0..<0x10000).map { compute(UInt32($0)).rawValue }

    /// llama.cpp's tables are Unicode 15.1; scalars assigned later count as unassigned there.
    static let unicodeVersion = (major: 15, minor: 1)

    private static func compute(_ value: UInt32) -> CharClass {
        guard let s = Unicode.Scalar(value) else { return [] }
        var c: CharClass = isWhitespace(value) ? .whitespace : []
        guard let age = s.properties.age,
              (age.major, age.minor) <= (unicodeVersion.major, unicodeVersion.minor) else { return c }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            c.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            c.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            c.insert(.punctuation)
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            c.insert(.symbol)
        case .nonspacingMark, .spacingMark, .enclosingMark:
            c.insert(.mark)
        default:
            break
        }
        return c
    }

    /// Unicode White_Space: tab..carriage return, space, NEL, NBSP, ogham space, the U+2000 spaces,
    /// line/paragraph separators, narrow NBSP, medium math space, ideographic space.
    private static func isWhitespace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
}
