// Pre-tokenizers: split text into the words that BPE merges within. Each is a hand-written matcher
// over Unicode scalars implementing one of the split patterns llama.cpp uses (which in turn follow
// the Hugging Face tokenizer.json patterns), with llama.cpp's behaviour at the edges:
//
//   gpt2      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   starcoder \p{N} isolated first (every digit its own word), then gpt2 on the pieces
//             (also smollm, refact, codeshell, exaone, minerva-7b, command-r)
//   llama3    (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//             | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//             (the llama-bpe family also uses whole-word tokens unmerged and adds BOS;
//             dbrx and smaug-bpe share only the pattern)
//   qwen2     as llama3 but \p{N} (one digit per word)
//   default   [\p{P}$+<=>^~|]+ isolated, then gpt2, then \p{N}+, then [0-9]{3}, each on the
//             pieces of the one before (llama.cpp's fallback when a GGUF names no pre-tokenizer)
//
// A stage never joins text across the boundaries of the stage before; text between matches of an
// isolating stage stays one piece.

/// The split rule of a byte-level BPE vocabulary (`tokenizer.ggml.pre`).
enum PreTokenizer: Sendable, Equatable {
    case gpt2, starcoder, llama3, dbrx, qwen2, legacy

    /// Pre-tokenizer names accepted in `tokenizer.ggml.pre`, by rule.
    static let names: [(PreTokenizer, [String])] = [
        (.gpt2, ["gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "granite-docling", "exaone4",
                 "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat", "a.x-4.0", "mellum", "modern-bert"]),
        (.starcoder, ["smollm", "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "command-r", "mellum2"]),
        (.llama3, ["llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                   "jina-v5-nano"]),
        (.dbrx, ["dbrx", "smaug-bpe"]),
        (.qwen2, ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open"]),
        (.legacy, ["default"]),
    ]

    /// The rule for a `tokenizer.ggml.pre` value; a missing value means llama.cpp's default.
    /// ("gpt2" is accepted besides llama.cpp's "gpt-2".)
    init?(name: String?) {
        guard let name, !name.isEmpty else { self = .legacy; return }
        guard let rule = PreTokenizer.names.first(where: { $0.1.contains(name) })?.0 else { return nil }
        self = rule
    }

    /// llama.cpp's vocabulary defaults that come with the llama3 family of names: a whole word that
    /// is itself a token is used as is, and BOS is added unless the metadata says otherwise.
    var ignoresMerges: Bool { self == .llama3 }
    var addsBOSByDefault: Bool { self == .llama3 }

    /// Splits `cps[0..<count]` into words; returns the end offset (in scalars) of each word.
    func split(_ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<CharClass>) -> [Int] {
        let s = Splitter(cps: cps, cls: cls)
        var ends: [Int] = []
        ends.reserveCapacity(cps.count / 3 + 1)
        let all = [cps.count]
        switch self {
        case .gpt2:
            s.gpt2(0, cps.count, &ends)
        case .llama3, .dbrx:
            s.llama3(0, cps.count, maxDigits: 3, &ends)
        case .qwen2:
            s.llama3(0, cps.count, maxDigits: 1, &ends)
        case .starcoder:
            let pieces = s.stage(all) { s.isolateRuns($0, $1, maxRun: 1, &$2) { $0.contains(.number) } }
            s.forEach(pieces) { s.gpt2($0, $1, &ends) }
        case .legacy:
            var p = s.stage(all) { lo, hi, out in
                s.isolateRuns(lo, hi, maxRun: .max, &out) { c in
                    c.contains(.punctuation)
                } extra: { v in v == 0x24 || v == 0x2B || v == 0x3C || v == 0x3D || v == 0x3E || v == 0x5E || v == 0x7E || v == 0x7C }
            }
            p = s.stage(p) { s.gpt2($0, $1, &$2) }
            p = s.stage(p) { s.isolateRuns($0, $1, maxRun: .max, &$2) { $0.contains(.number) } }
            ends = s.stage(p) { s.asciiDigitTriples($0, $1, &$2) }
        }
        return ends
    }
}

/// The matchers. Positions are scalar offsets; a word is recorded by its end offset.
private struct Splitter {
    let cps: UnsafeBufferPointer<UInt32>
    let cls: UnsafeBufferPointer<CharClass>

    /// Runs `body` on every piece [lo, hi) given by `ends`, collecting the new ends.
    func stage(_ ends: [Int], _ body: (Int, Int, inout [Int]) -> Void) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(ends.count * 2)
        forEach(ends) { body($0, $1, &out) }
        return out
    }

    func forEach(_ ends: [Int], _ body: (Int, Int) -> Void) {
        var lo = 0
        for hi in ends {
            body(lo, hi)
            lo = hi
        }
    }

    /// Splits [lo, hi) so that each maximal run of matching scalars (cut into runs of at most
    /// `maxRun`) is its own piece; the text between runs stays whole.
    func isolateRuns(_ lo: Int, _ hi: Int, maxRun: Int, _ out: inout [Int],
                     _ match: (CharClass) -> Bool, extra: (UInt32) -> Bool = { _ in false }) {
        var p = lo
        while p < hi {
            if match(cls[p]) || extra(cps[p]) {
                var e = p + 1
                while e < hi, e - p < maxRun, match(cls[e]) || extra(cps[e]) { e += 1 }
                out.append(e)
                p = e
            } else {
                var e = p + 1
                while e < hi, !(match(cls[e]) || extra(cps[e])) { e += 1 }
                out.append(e)
                p = e
            }
        }
    }

    /// `[0-9][0-9][0-9]`: leftmost non-overlapping triples of ASCII digits become pieces.
    func asciiDigitTriples(_ lo: Int, _ hi: Int, _ out: inout [Int]) {
        func digit(_ i: Int) -> Bool { cps[i] >= 0x30 && cps[i] <= 0x39 }
        var gapStart = lo
        var p = lo
        while p + 3 <= hi {
            if digit(p) && digit(p + 1) && digit(p + 2) {
                if p > gapStart { out.append(p) }
                out.append(p + 3)
                p += 3
                gapStart = p
            } else {
                p += 1
            }
        }
        if hi > gapStart { out.append(hi) }
    }

    @inline(__always) func cp(_ i: Int, _ hi: Int) -> UInt32 { i < hi ? cps[i] : 0xFFFF_FFFF }
    /// Class at `i`, or nil past the end of the piece (matches nothing, not even "other").
    @inline(__always) func cl(_ i: Int, _ hi: Int) -> CharClass? { i < hi ? cls[i] : nil }

    /// Length of an English contraction ('s 't 'm 'd 're 've 'll) at `p`, or 0.
    @inline(__always) func contraction(_ p: Int, _ hi: Int, caseless: Bool) -> Int {
        guard cps[p] == 0x27, p + 1 < hi else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { caseless && v >= 0x41 && v <= 0x5A ? v + 32 : v }
        let a = lower(cps[p + 1])
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }  // s t m d
        guard p + 2 < hi else { return 0 }
        let b = lower(cps[p + 2])
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    /// Length of the run of whitespace at `p`, and the end of the last \r or \n in it (0 if none).
    @inline(__always) func whitespaceRun(_ p: Int, _ hi: Int) -> (count: Int, lineEnd: Int) {
        var n = 0
        var lineEnd = 0
        while p + n < hi, cls[p + n].contains(.whitespace) {
            if cps[p + n] == 0x0A || cps[p + n] == 0x0D { lineEnd = p + n + 1 }
            n += 1
        }
        return (n, lineEnd)
    }

    static let wordish: CharClass = [.whitespace, .letter, .number]

    /// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    func gpt2(_ lo: Int, _ hi: Int, _ out: inout [Int]) {
        var p = lo
        while p < hi {
            let c = contraction(p, hi, caseless: false)
            if c > 0 { p += c; out.append(p); continue }

            // An optional leading space, then a run of letters, of digits, or of other symbols.
            let q = cps[p] == 0x20 ? p + 1 : p
            if let k = cl(q, hi) {
                var run: ((CharClass) -> Bool)? = nil
                if k.contains(.letter) { run = { $0.contains(.letter) } }
                else if k.contains(.number) { run = { $0.contains(.number) } }
                else if k.isDisjoint(with: Splitter.wordish) { run = { $0.isDisjoint(with: Splitter.wordish) } }
                if let run {
                    var e = q + 1
                    while e < hi, run(cls[e]) { e += 1 }
                    p = e
                    out.append(p)
                    continue
                }
            }

            // Whitespace: all but the last when more text follows, else all of it.
            let ws = whitespaceRun(p, hi)
            if ws.count > 1 && p + ws.count < hi { p += ws.count - 1; out.append(p); continue }
            if ws.count > 0 { p += ws.count; out.append(p); continue }
            p += 1
            out.append(p)
        }
    }

    /// Llama 3 (maxDigits 3) and Qwen 2 (maxDigits 1):
    /// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    func llama3(_ lo: Int, _ hi: Int, maxDigits: Int, _ out: inout [Int]) {
        var p = lo
        while p < hi {
            let c = contraction(p, hi, caseless: true)
            if c > 0 { p += c; out.append(p); continue }

            let v = cps[p]
            let k = cls[p]
            // One optional non-letter, non-digit, non-newline prefix, then letters.
            if v != 0x0A && v != 0x0D && !k.contains(.number) {
                if k.contains(.letter) || (cl(p + 1, hi)?.contains(.letter) ?? false) {
                    var e = p + 1
                    while e < hi, cls[e].contains(.letter) { e += 1 }
                    p = e
                    out.append(p)
                    continue
                }
            }

            // Digits, in words of at most maxDigits.
            if k.contains(.number) {
                var e = p
                while e < hi, cls[e].contains(.number) {
                    e += 1
                    if e - p >= maxDigits { out.append(e); p = e }
                }
                if e > p { out.append(e) }
                p = e
                continue
            }

            // An optional space, other symbols, then any newlines. A space at the very end of the
            // piece also lands here, as a word of its own.
            let q = v == 0x20 ? p + 1 : p
            if cl(q, hi).map({ $0.isDisjoint(with: Splitter.wordish) }) ?? true {
                var e = q
                while e < hi, cls[e].isDisjoint(with: Splitter.wordish) { e += 1 }
                while e < hi, cps[e] == 0x0A || cps[e] == 0x0D { e += 1 }
                p = e
                out.append(p)
                continue
            }

            // Whitespace up to and including the last newline in the run; else as in GPT-2.
            let ws = whitespaceRun(p, hi)
            if ws.lineEnd > 0 { p = ws.lineEnd; out.append(p); continue }
            if ws.count > 1 && p + ws.count < hi { p += ws.count - 1; out.append(p); continue }
            if ws.count > 0 { p += ws.count; out.append(p); continue }
            p += 1
            out.append(p)
        }
    }
}
