import Foundation
import GGUF

// Byte-level BPE tokenizer (GGUF `tokenizer.ggml.model = gpt2`), matching llama.cpp's:
//   1. special tokens (control, user-defined, unknown) found in the text are cut out whole, the
//      longest first, each everywhere in the remaining text before the next;
//   2. the text between them is split into words by the vocabulary's pre-tokenizer;
//   3. each word's bytes, spelled as GPT-2 byte characters, are merged pairwise by merge rank
//      (lowest rank first, leftmost first on ties) into tokens.
//
// Known limits: only `gpt2` (byte-level BPE) vocabularies; EOS is never appended (BPE models do
// not ask for it); `decode` concatenates token bytes exactly and does not apply llama.cpp's
// optional `clean_spaces` detokenizer pass; per-token lstrip/rstrip attributes (phi-3) are ignored.

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// `tokenizer.ggml.model` names a tokenizer other than byte-level BPE.
    case unsupportedModel(String, path: String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer this implementation does not have.
    case unknownPreTokenizer(String, path: String)
    /// The tokenizer metadata is inconsistent.
    case malformed(String, path: String)
    /// A token id outside the vocabulary.
    case invalidToken(Int32)

    public var description: String {
        switch self {
        case .unsupportedModel(let m, let p):
            return "\(p): tokenizer model '\(m)' is not supported (only 'gpt2', byte-level BPE, is)"
        case .unknownPreTokenizer(let n, let p):
            let known = PreTokenizer.names.flatMap { $0.1 }.joined(separator: ", ")
            return "\(p): unknown pre-tokenizer '\(n)' (tokenizer.ggml.pre); known: \(known)"
        case .malformed(let what, let p):
            return "\(p): tokenizer metadata is malformed: \(what)"
        case .invalidToken(let t):
            return "token id \(t) is outside the vocabulary"
        }
    }
}

/// Ids of tokens with a role. Any may be absent.
public struct SpecialTokenIDs: Sendable, Equatable {
    public var bos: Int32?
    public var eos: Int32?
    public var eot: Int32?
    public var eom: Int32?
    public var fimPre: Int32?
    public var fimSuf: Int32?
    public var fimMid: Int32?
    public var fimPad: Int32?
    public var fimRep: Int32?
    public var fimSep: Int32?

    public init(bos: Int32? = nil, eos: Int32? = nil, eot: Int32? = nil, eom: Int32? = nil,
                fimPre: Int32? = nil, fimSuf: Int32? = nil, fimMid: Int32? = nil,
                fimPad: Int32? = nil, fimRep: Int32? = nil, fimSep: Int32? = nil) {
        self.bos = bos; self.eos = eos; self.eot = eot; self.eom = eom
        self.fimPre = fimPre; self.fimSuf = fimSuf; self.fimMid = fimMid
        self.fimPad = fimPad; self.fimRep = fimRep; self.fimSep = fimSep
    }
}

/// GGUF token types (`tokenizer.ggml.token_type`).
public enum TokenType: Int, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// Token attributes, as llama.cpp derives them from the token types and names.
struct TokenAttr: OptionSet, Sendable {
    let rawValue: UInt8
    static let normal = TokenAttr(rawValue: 1 << 0)
    static let unknown = TokenAttr(rawValue: 1 << 1)
    static let control = TokenAttr(rawValue: 1 << 2)
    static let userDefined = TokenAttr(rawValue: 1 << 3)
    static let unused = TokenAttr(rawValue: 1 << 4)
    static let byte = TokenAttr(rawValue: 1 << 5)

    init(rawValue: UInt8) { self.rawValue = rawValue }
    init(type: Int) {
        switch TokenType(rawValue: type) {
        case .normal: self = .normal
        case .unknown: self = .unknown
        case .control: self = .control
        case .userDefined: self = .userDefined
        case .unused: self = .unused
        case .byte: self = .byte
        case .undefined, nil: self = []
        }
    }
}

public final class Tokenizer: @unchecked Sendable {
    /// Vocabulary spellings, by id.
    public let tokens: [String]
    /// `tokenizer.ggml.pre` as given (empty when absent).
    public let preName: String
    public let special: SpecialTokenIDs
    /// Whether `encode` adds BOS by default (`tokenizer.ggml.add_bos_token`, else the pre-tokenizer's default).
    public let addBOS: Bool
    /// Tokens that end generation: EOS, EOT, EOM, the FIM pad/repo/file-separator tokens and, as
    /// llama.cpp does, tokens spelled like an end marker (<|im_end|>, <|endoftext|>, <|eot_id|>, ...).
    public let endOfGeneration: Set<Int32>

    public var vocabSize: Int { tokens.count }
    public var bosID: Int32? { special.bos }
    public var eosID: Int32? { special.eos }
    public var eotID: Int32? { special.eot }

    let pre: PreTokenizer
    let attrs: [TokenAttr]
    /// Bytes each token stands for, flattened: token i is pieceBytes[pieceStart[i] ..< pieceStart[i + 1]].
    let pieceBytes: [UInt8]
    let pieceStart: [Int32]
    let textToID: [ByteString: Int32]
    /// Vocabulary tokens by the bytes they spell (only for pre-tokenizers that skip merging whole-token words).
    let wordToID: [[UInt8]: Int32]
    /// Symbol id of each byte. Symbols are vocabulary ids, or ids from vocabSize up for strings that
    /// merges mention but the vocabulary lacks (spelled in `extraSymbols`).
    let byteSymbol: [Int32]
    let extraSymbols: [String]
    /// (left << 32 | right) -> (rank << 32 | merged), symbols as UInt32 bit patterns.
    let merges: [UInt64: UInt64]
    /// Special tokens to cut out before pre-tokenizing, longest first.
    let specials: [(bytes: [UInt8], id: Int32, controlOrUnknown: Bool)]

    // MARK: Loading

    /// Reads the tokenizer from the metadata of the GGUF file at `path`.
    public convenience init(path: String) throws {
        try self.init(gguf: GGUFFile(path: path))
    }

    /// Reads the tokenizer from a GGUF file's metadata.
    public convenience init(gguf: GGUFFile) throws {
        typealias K = GGUFKey.Tokenizer
        let path = gguf.path
        guard let model = gguf.metadata[K.model]?.string else {
            throw TokenizerError.malformed("\(K.model) is missing", path: path)
        }
        guard model == "gpt2" else { throw TokenizerError.unsupportedModel(model, path: path) }
        let tokens = try gguf.stringArray(K.tokens)
        let types = gguf.metadata[K.tokenType] == nil ? nil : try gguf.intArray(K.tokenType)
        let merges = try gguf.stringArray(K.merges)
        func id(_ key: String, default value: Int32? = nil) -> Int32? {
            // Like llama.cpp, an id past the vocabulary is ignored in favour of the default.
            if let v = gguf.metadata[key]?.int, v >= 0, v < tokens.count { return Int32(v) }
            if let value, Int(value) < tokens.count { return value }
            return nil
        }
        // llama.cpp's defaults for gpt2 vocabularies without BOS/EOS ids are token 11.
        let special = SpecialTokenIDs(
            bos: id(K.bosID, default: 11), eos: id(K.eosID, default: 11), eot: id(K.eotID), eom: id(K.eomID),
            fimPre: id("tokenizer.ggml.fim_pre_token_id") ?? id("tokenizer.ggml.prefix_token_id"),
            fimSuf: id("tokenizer.ggml.fim_suf_token_id") ?? id("tokenizer.ggml.suffix_token_id"),
            fimMid: id("tokenizer.ggml.fim_mid_token_id") ?? id("tokenizer.ggml.middle_token_id"),
            fimPad: id("tokenizer.ggml.fim_pad_token_id"), fimRep: id("tokenizer.ggml.fim_rep_token_id"),
            fimSep: id("tokenizer.ggml.fim_sep_token_id"))
        try self.init(tokens: tokens, tokenTypes: types, merges: merges, pre: gguf.metadata[K.pre]?.string,
                      special: special, addBOS: gguf.metadata[K.addBOS]?.bool, source: path)
    }

    /// Builds a tokenizer from plain arrays.
    /// - Parameters:
    ///   - tokens: vocabulary spellings (GPT-2 byte characters for normal tokens).
    ///   - tokenTypes: `TokenType` raw values per token; nil means all normal.
    ///   - merges: "left right" pairs, best first.
    ///   - pre: pre-tokenizer name (`tokenizer.ggml.pre`); nil means llama.cpp's default rules.
    ///   - addBOS: nil means the pre-tokenizer's default (true for llama3-style, else false).
    public init(tokens: [String], tokenTypes: [Int]? = nil, merges: [String], pre: String?,
                special: SpecialTokenIDs = SpecialTokenIDs(), addBOS: Bool? = nil, source: String = "tokenizer") throws {
        guard !tokens.isEmpty else { throw TokenizerError.malformed("the vocabulary is empty", path: source) }
        guard tokens.count < Int(Int32.max) / 2 else { throw TokenizerError.malformed("vocabulary too large", path: source) }
        if let tokenTypes, tokenTypes.count < tokens.count {
            throw TokenizerError.malformed("\(tokenTypes.count) token types for \(tokens.count) tokens", path: source)
        }
        guard let rule = PreTokenizer(name: pre) else {
            throw TokenizerError.unknownPreTokenizer(pre ?? "", path: source)
        }
        let n = tokens.count
        var tokens = tokens
        for i in tokens.indices where tokens[i].isEmpty { tokens[i] = "[EMPTY_\(i)]" }
        self.tokens = tokens
        self.pre = rule
        self.preName = pre ?? ""
        self.addBOS = addBOS ?? rule.addsBOSByDefault

        var textToID: [ByteString: Int32] = [:]
        textToID.reserveCapacity(n)
        for (i, t) in tokens.enumerated() { textToID[ByteString(t)] = Int32(i) }  // the last of duplicates wins
        self.textToID = textToID

        // Attributes, with llama.cpp's name-based corrections.
        var attrs: [TokenAttr] = tokenTypes.map { t in (0..<n).map { TokenAttr(type: t[$0]) } }
            ?? Array(repeating: .normal, count: n)
        var special = special
        for key in [\SpecialTokenIDs.bos, \.eos, \.eot, \.eom, \.fimPre, \.fimSuf, \.fimMid, \.fimPad, \.fimRep, \.fimSep] {
            if let v = special[keyPath: key], v < 0 || Int(v) >= n { special[keyPath: key] = nil }
        }
        func find(_ names: [String]) -> Int32? { names.lazy.compactMap { textToID[ByteString($0)] }.first }
        func role(_ key: WritableKeyPath<SpecialTokenIDs, Int32?>, _ names: [String]) {
            guard special[keyPath: key] == nil, let id = find(names) else { return }
            special[keyPath: key] = id
            attrs[Int(id)].insert(.control)
        }
        role(\.eot, ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                     "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"])
        role(\.eom, ["<|eom_id|>"])
        role(\.fimPre, ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                        "<|code_prefix|>", "<|prefix|>"])
        role(\.fimSuf, ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                        "<|code_suffix|>", "<|suffix|>"])
        role(\.fimMid, ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                        "<|code_middle|>", "<|middle|>"])
        role(\.fimPad, ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"])
        role(\.fimRep, ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"])
        role(\.fimSep, ["<|file_sep|>"])

        var eog = Set([special.fimPad, special.fimRep, special.fimSep].compactMap { $0 })
        for name in ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                     "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                     "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                     "<｜end▁of▁sentence｜>", "[e~["] {
            if let id = textToID[ByteString(name)] {
                eog.insert(id)
                attrs[Int(id)].insert(.control)
            }
        }
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let id = textToID[ByteString(name)] { attrs[Int(id)] = .userDefined }
        }
        for id in [special.eos, special.eot, special.eom].compactMap({ $0 }) { eog.insert(id) }
        let eogNames = Set(eog.map { tokens[Int($0)] })
        let hasCall = eogNames.contains("<|call|>") || eogNames.contains("<|calls|>")
        if let end = textToID[ByteString("<|end|>")], eog.contains(end),
           hasCall && (eogNames.contains("<|return|>") || eogNames.contains("<|flush|>")) {
            eog.remove(end)  // o200k_harmony / solar-open: <|end|> ends a message, not the generation
            attrs[Int(end)] = .userDefined
        }
        if let s = textToID[ByteString("</s>")], eog.contains(s),
           eogNames.contains("<|tool_response>") || eogNames.contains("<|plamo:eos|>") {
            eog.remove(s)
            attrs[Int(s)] = .normal
        }
        self.special = special
        self.endOfGeneration = eog
        self.attrs = attrs

        // The bytes of each token.
        var bytes: [UInt8] = []
        var starts: [Int32] = [0]
        bytes.reserveCapacity(n * 6)
        starts.reserveCapacity(n + 1)
        for i in 0..<n {
            let a = attrs[i]
            let text = tokens[i]
            if !a.isDisjoint(with: [.unknown, .control, .userDefined]) {
                bytes.append(contentsOf: text.utf8)
            } else if a.contains(.normal) {
                for s in text.unicodeScalars {
                    if let b = ByteLevel.byte(of: s.value) { bytes.append(b) } else { bytes.append(contentsOf: String(s).utf8) }
                }
            } else if a.contains(.byte) {
                let u = Array(text.utf8)
                if u.count == 6, let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) { bytes.append(b) }
            }
            starts.append(Int32(bytes.count))
        }
        self.pieceBytes = bytes
        self.pieceStart = starts

        // Whole-word lookup for llama3-style vocabularies: any token whose spelling is all byte characters.
        var wordToID: [[UInt8]: Int32] = [:]
        if rule.ignoresMerges {
            wordToID.reserveCapacity(n)
            for (i, t) in tokens.enumerated() {
                if let raw = ByteLevel.decode(t) { wordToID[raw] = Int32(i) }
            }
        }
        self.wordToID = wordToID

        // Merge table over symbol ids.
        var extra: [String] = []
        var extraID: [ByteString: Int32] = [:]
        func symbol(_ s: String) -> Int32 {
            let key = ByteString(s)
            if let id = textToID[key] { return id }
            if let id = extraID[key] { return id }
            let id = Int32(n + extra.count)
            extra.append(s)
            extraID[key] = id
            return id
        }
        self.byteSymbol = (0..<256).map { symbol(ByteLevel.encode([UInt8($0)])) }
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() {
            // Split at the first space after the first byte (a merge of " " itself stays whole).
            var m = m
            var left = "", right = ""
            m.withUTF8 { u in
                guard u.count > 1, let sp = u[1...].firstIndex(of: 0x20) else { return }
                left = String(decoding: UnsafeBufferPointer(rebasing: u[..<sp]), as: UTF8.self)
                right = String(decoding: UnsafeBufferPointer(rebasing: u[(sp + 1)...]), as: UTF8.self)
            }
            let key = UInt64(UInt32(bitPattern: symbol(left))) << 32 | UInt64(UInt32(bitPattern: symbol(right)))
            if table[key] == nil {  // the first (best) rank of a repeated pair counts
                table[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: symbol(left + right)))
            }
        }
        self.merges = table
        self.extraSymbols = extra

        var specials: [(bytes: [UInt8], id: Int32, controlOrUnknown: Bool)] = []
        for i in 0..<n where !attrs[i].isDisjoint(with: [.control, .userDefined, .unknown]) {
            specials.append((Array(tokens[i].utf8), Int32(i), !attrs[i].isDisjoint(with: [.control, .unknown])))
        }
        specials.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        self.specials = specials
    }

    // MARK: Lookup

    /// The bytes a token stands for; control and other special tokens give their text.
    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { return [] }
        return Array(pieceBytes[Int(pieceStart[Int(id)])..<Int(pieceStart[Int(id) + 1])])
    }

    /// The token's vocabulary spelling (e.g. "Ġhello" for " hello").
    public func tokenText(_ id: Int32) -> String {
        guard id >= 0, Int(id) < tokens.count else { return "" }
        return tokens[Int(id)]
    }

    /// The id of a vocabulary spelling.
    public func id(of tokenText: String) -> Int32? { textToID[ByteString(tokenText)] }

    /// Whether the token is a control, user-defined or unknown token (matched whole in text).
    public func isSpecial(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < tokens.count else { return false }
        return !attrs[Int(id)].isDisjoint(with: [.control, .userDefined, .unknown])
    }

    // MARK: Decoding

    /// The text of a token sequence: its bytes concatenated, invalid UTF-8 replaced by U+FFFD.
    public func decode(_ ids: [Int32]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && Int(id) < tokens.count {
            out.append(contentsOf: pieceBytes[Int(pieceStart[Int(id)])..<Int(pieceStart[Int(id) + 1])])
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Encoding

    /// Token ids for `text`.
    /// - Parameters:
    ///   - addBOS: prepend BOS; nil means the model's default (`addBOS`).
    ///   - parseSpecial: match control tokens spelled in the text (user-defined tokens always match).
    public func encode(_ text: String, addBOS: Bool? = nil, parseSpecial: Bool = true) -> [Int32] {
        var out: [Int32] = []
        if addBOS ?? self.addBOS, let bos = special.bos { out.append(bos) }
        let utf8 = Array(text.utf8)
        if utf8.isEmpty { return out }
        out.reserveCapacity(out.count + utf8.count / 3)
        utf8.withUnsafeBufferPointer { text in
            var scratch = Scratch()
            for fragment in partition(text, parseSpecial: parseSpecial) {
                switch fragment {
                case .token(let id): out.append(id)
                case .text(let range): encodeText(UnsafeBufferPointer(rebasing: text[range]), &scratch, &out)
                }
            }
        }
        return out
    }

    enum Fragment {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Cuts special tokens out of the text: each special token in turn (longest first) splits every
    /// occurrence out of the text fragments that are left, leftmost first.
    func partition(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = [.text(0..<text.count)]
        var present = [Bool](repeating: false, count: 256)
        for b in text { present[Int(b)] = true }
        for sp in specials {
            if sp.controlOrUnknown && !parseSpecial { continue }
            let pat = sp.bytes
            guard let first = pat.first, present[Int(first)], pat.count <= text.count else { continue }
            var next: [Fragment] = []
            var changed = false
            for f in fragments {
                guard case .text(let range) = f else { next.append(f); continue }
                var lo = range.lowerBound
                var i = lo
                let last = range.upperBound - pat.count
                while i <= last {
                    if text[i] == first && memcmpEqual(text, i, pat) {
                        if i > lo { next.append(.text(lo..<i)) }
                        next.append(.token(sp.id))
                        i += pat.count
                        lo = i
                        changed = true
                    } else {
                        i += 1
                    }
                }
                if lo < range.upperBound { next.append(.text(lo..<range.upperBound)) }
            }
            if changed { fragments = next }
        }
        return fragments
    }

    @inline(__always)
    private func memcmpEqual(_ text: UnsafeBufferPointer<UInt8>, _ at: Int, _ pat: [UInt8]) -> Bool {
        for j in 1..<max(pat.count, 1) where text[at + j] != pat[j] { return false }
        return true
    }

    /// Reusable buffers for one `encode` call.
    struct Scratch {
        var cps: [UInt32] = []
        var cls: [CharClass] = []
        var byteOffset: [Int] = []
        var sym: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var pairRank: [UInt32] = []
        var heap: [UInt64] = []
        var cache: [ArraySlice<UInt8>: [Int32]] = [:]
    }

    /// Pre-tokenizes and BPE-encodes text that holds no special tokens.
    private func encodeText(_ bytes: UnsafeBufferPointer<UInt8>, _ s: inout Scratch, _ out: inout [Int32]) {
        // Scalars (the text is valid UTF-8: it comes from a String, cut at special-token boundaries).
        s.cps.removeAll(keepingCapacity: true)
        s.cls.removeAll(keepingCapacity: true)
        s.byteOffset.removeAll(keepingCapacity: true)
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = UInt32(bytes[i])
            var v: UInt32
            var len: Int
            if b0 < 0x80 { v = b0; len = 1 }
            else if b0 < 0xE0 { v = b0 & 0x1F; len = 2 }
            else if b0 < 0xF0 { v = b0 & 0x0F; len = 3 }
            else { v = b0 & 0x07; len = 4 }
            len = min(len, n - i)
            for k in 1..<max(len, 1) { v = v << 6 | (UInt32(bytes[i + k]) & 0x3F) }
            s.cps.append(v)
            s.cls.append(CharClass.of(v))
            s.byteOffset.append(i)
            i += len
        }
        s.byteOffset.append(n)

        let ends = s.cps.withUnsafeBufferPointer { c in
            s.cls.withUnsafeBufferPointer { k in pre.split(c, k) }
        }
        var start = 0
        for end in ends {
            let word = UnsafeBufferPointer(rebasing: bytes[s.byteOffset[start]..<s.byteOffset[end]])
            start = end
            encodeWord(word, &s, &out)
        }
    }

    /// BPE-merges one word's bytes into tokens.
    private func encodeWord(_ word: UnsafeBufferPointer<UInt8>, _ s: inout Scratch, _ out: inout [Int32]) {
        let n = word.count
        if n == 0 { return }
        if n == 1 { emit(byteSymbol[Int(word[0])], &out); return }
        if pre.ignoresMerges, let id = wordToID[Array(word)] { out.append(id); return }
        let key = ArraySlice(word)
        if let hit = s.cache[key] { out.append(contentsOf: hit); return }

        // Symbols as a doubly linked list over the word's bytes.
        s.sym.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        s.pairRank.removeAll(keepingCapacity: true)
        s.heap.removeAll(keepingCapacity: true)
        for (i, b) in word.enumerated() {
            s.sym.append(byteSymbol[Int(b)])
            s.prev.append(Int32(i - 1))
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
            s.pairRank.append(.max)
        }
        // Rank of the pair starting at symbol l (UInt32.max: no merge), and the merged symbol.
        func lookup(_ l: Int) -> (rank: UInt32, merged: Int32) {
            let r = Int(s.next[l])
            guard r >= 0 else { return (.max, -1) }
            let k = UInt64(UInt32(bitPattern: s.sym[l])) << 32 | UInt64(UInt32(bitPattern: s.sym[r]))
            guard let v = merges[k] else { return (.max, -1) }
            return (UInt32(v >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
        }
        func push(_ l: Int) {
            let (rank, _) = lookup(l)
            s.pairRank[l] = rank
            guard rank != .max else { return }
            s.heap.append(UInt64(rank) << 32 | UInt64(l))
            var c = s.heap.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                if s.heap[p] <= s.heap[c] { break }
                s.heap.swapAt(p, c)
                c = p
            }
        }
        func pop() -> UInt64 {
            let top = s.heap[0]
            let last = s.heap.removeLast()
            if !s.heap.isEmpty {
                s.heap[0] = last
                var p = 0
                let count = s.heap.count
                while true {
                    let l = 2 * p + 1
                    if l >= count { break }
                    var m = l
                    if l + 1 < count && s.heap[l + 1] < s.heap[l] { m = l + 1 }
                    if s.heap[p] <= s.heap[m] { break }
                    s.heap.swapAt(p, m)
                    p = m
                }
            }
            return top
        }
        for l in 0..<(n - 1) { push(l) }
        // Lowest rank first, leftmost on ties; an entry is stale once its pair has changed.
        while !s.heap.isEmpty {
            let e = pop()
            let rank = UInt32(e >> 32)
            let l = Int(UInt32(truncatingIfNeeded: e))
            guard s.sym[l] >= 0, s.pairRank[l] == rank else { continue }
            let (_, merged) = lookup(l)
            let r = Int(s.next[l])
            s.sym[l] = merged
            s.sym[r] = -1
            s.next[l] = s.next[r]
            if s.next[r] >= 0 { s.prev[Int(s.next[r])] = Int32(l) }
            push(l)
            if s.prev[l] >= 0 { push(Int(s.prev[l])) }
        }
        let before = out.count
        var i = 0
        while i >= 0 {
            emit(s.sym[i], &out)
            i = Int(s.next[i])
        }
        if s.cache.count < 50_000 { s.cache[key] = Array(out[before...]) }
    }

    /// Appends a symbol: a vocabulary id, or for a string the vocabulary lacks, the single-byte
    /// tokens of its bytes where they exist (llama.cpp's fallback).
    @inline(__always)
    private func emit(_ sym: Int32, _ out: inout [Int32]) {
        if Int(sym) < tokens.count { out.append(sym); return }
        for b in extraSymbols[Int(sym) - tokens.count].utf8 {
            if b < 0x80, let id = textToID[ByteString(String(UnicodeScalar(b)))] { out.append(id) }
        }
    }
}

/// A string compared and hashed by its UTF-8 bytes, as llama.cpp compares token spellings (Swift's
/// String compares by canonical equivalence, which is both slower and not what a vocabulary means).
struct ByteString: Hashable, Sendable {
    let string: String

    init(_ string: String) { self.string = string }

    static func == (a: ByteString, b: ByteString) -> Bool {
        let r = a.string.utf8.withContiguousStorageIfAvailable { x in
            b.string.utf8.withContiguousStorageIfAvailable { y in
                x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
            }
        }
        if let r, let r { return r }
        return a.string.utf8.elementsEqual(b.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        if string.utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            for b in string.utf8 { hasher.combine(b) }
        }
    }
}
