import Assets
import Crypto
import Engine
import Foundation
import GGUF
import Testing
import TestSupport

/// Where the tokenizer tests find their models and fixtures.
enum TokenizerTestFiles {
    /// `$RELAY_HOME` (default ~/.cache/relay), as fetched by scripts/test.sh.
    static let store = AssetStore()
    static let smolPath = store.modelsDir + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    static let qwenPath = store.modelsDir + "/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"

    /// A model file by name: the fetched models first, then the generated tiny ones.
    static func model(_ fileName: String) -> String? {
        [store.modelsDir, store.testDir].map { $0 + "/" + fileName }.first { FileManager.default.fileExists(atPath: $0) }
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// Tests/Fixtures/tokenizer-*.json, made with llama.cpp's llama-tokenize.
    static let fixtureNames: [String] = {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? []
        return all.filter { $0.hasPrefix("tokenizer-") && $0.hasSuffix(".json") }.sorted()
    }()

    /// Tokenizers are loaded once per file.
    nonisolated(unsafe) static var loaded: [String: Tokenizer] = [:]
    static let lock = NSLock()
    static func tokenizer(_ path: String) throws -> Tokenizer {
        lock.lock()
        defer { lock.unlock() }
        if let t = loaded[path] { return t }
        let t = try Tokenizer(path: path)
        loaded[path] = t
        return t
    }

    static func smol() throws -> Tokenizer {
        guard FileManager.default.fileExists(atPath: smolPath) else { try Test.cancel("SmolLM2-135M not fetched") }
        return try tokenizer(smolPath)
    }
}

/// One `Tests/Fixtures/tokenizer-<model>.json`.
struct TokenizerFixture: Decodable {
    struct Case: Decodable {
        let text: String
        let ids: [Int32]
    }
    let model: String
    let modelFile: String
    let tokenizerPre: String
    let addBosToken: Bool
    let bosAdded: Bool
    let parseSpecial: Bool
    let cases: [Case]

    static func load(_ name: String) throws -> TokenizerFixture {
        let data = try Data(contentsOf: TokenizerTestFiles.fixtures.appendingPathComponent(name))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(TokenizerFixture.self, from: data)
    }

    /// The fixture's tokenizer, or a cancelled test when its model file is absent.
    func tokenizer() throws -> Tokenizer {
        guard let path = TokenizerTestFiles.model(modelFile) else { try Test.cancel("\(modelFile) not present") }
        return try TokenizerTestFiles.tokenizer(path)
    }
}

/// Strings that stress the pre-tokenizers, special tokens and UTF-8 handling.
let awkwardTexts: [String] = [
    "", " ", "  ", "\n", "\r\n", "\t \t", "a", "Hello world", " Hello  world  ",
    "I'm you're WE'LL it's 's 'S ' ' '' don't'",
    "1 12 123 1234 12345 3.14159 1,000,000 ٣٤٥ ½ Ⅻ ²³ 𝟘𝟙",
    "naïve café e\u{301}\u{302} Z\u{351}\u{352}o",
    "你好，世界！こんにちは 안녕하세요 مرحبا שלום हिन्दी ไทย",
    "👋🌍 👨‍👩‍👧‍👦 🏳️‍🌈 👍🏽 🇫🇷 ❤️",
    "nbsp\u{A0}ideo\u{3000}em\u{2003}line\u{2028}para\u{2029}nel\u{85}zw\u{200B}bom\u{FEFF}",
    "private \u{E000} unassigned \u{378} controls \u{1}\u{7F}\u{0} replacement \u{FFFD}",
    "def f(x):\n    return x ** 2  # square\n\n\n\tpass\r\n",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start <| im_end |> <|endoftext </s> <s> <tool_call>x</tool_call>",
    String(repeating: "a", count: 1000), String(repeating: "ab", count: 500) + String(repeating: " ", count: 300),
]

@Suite("Byte-level BPE tokenizer")
struct TokenizerTests {
    @Test("encoding matches llama.cpp's llama-tokenize on every fixture", arguments: TokenizerTestFiles.fixtureNames)
    func matchesLlamaCpp(fixture name: String) throws {
        let fixture = try TokenizerFixture.load(name)
        let tok = try fixture.tokenizer()
        #expect(tok.preName == fixture.tokenizerPre)
        #expect(tok.addBOS == fixture.addBosToken)
        for c in fixture.cases {
            let ids = tok.encode(c.text, addBOS: fixture.bosAdded, parseSpecial: fixture.parseSpecial)
            #expect(ids == c.ids, "\(fixture.model): \(c.text.debugDescription)")
        }
    }

    @Test("decoding the encoding of each fixture text gives the text back", arguments: TokenizerTestFiles.fixtureNames)
    func fixtureRoundTrip(fixture name: String) throws {
        let fixture = try TokenizerFixture.load(name)
        let tok = try fixture.tokenizer()
        for c in fixture.cases {
            #expect(Array(tok.decode(c.ids).utf8) == Array(c.text.utf8), "\(fixture.model): \(c.text.debugDescription)")
        }
    }

    @Test("arbitrary UTF-8 round-trips through encode and decode", arguments: ["SmolLM2-135M-Instruct.Q4_1.gguf", "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"])
    func roundTrip(model: String) throws {
        guard let path = TokenizerTestFiles.model(model) else { try Test.cancel("\(model) not present") }
        let tok = try TokenizerTestFiles.tokenizer(path)
        var texts = awkwardTexts
        // Random scalars from many scripts and planes (seeded, so failures repeat).
        var rng = SplitMix64(seed: 42)
        let ranges: [ClosedRange<UInt32>] = [0x20...0x7E, 0x9...0xD, 0xA0...0x24F, 0x370...0x6FF, 0x900...0xE7F,
                                             0x2000...0x2BFF, 0x3000...0x9FFF, 0xAC00...0xD7A3, 0xE000...0xF8FF,
                                             0xFF00...0xFFEF, 0x1F300...0x1FAFF, 0x20000...0x2A6DF]
        for _ in 0..<200 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int(rng.next() % 40) {
                let r = ranges[Int(rng.next() % UInt64(ranges.count))]
                if let u = Unicode.Scalar(r.lowerBound + UInt32(rng.next() % UInt64(r.count))) { s.append(u) }
            }
            texts.append(String(s))
        }
        for text in texts {
            for parseSpecial in [true, false] {
                let ids = tok.encode(text, addBOS: false, parseSpecial: parseSpecial)
                #expect(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabSize })
                #expect(Array(tok.decode(ids).utf8) == Array(text.utf8), "\(text.debugDescription)")
            }
        }
    }

    @Test("SmolLM2's special tokens, BOS and end-of-generation set are llama.cpp's")
    func smolSpecials() throws {
        let tok = try TokenizerTestFiles.smol()
        #expect(tok.vocabSize == 49152)
        #expect(tok.preName == "smollm")
        #expect(tok.bosID == 1 && tok.eosID == 2)
        #expect(tok.addBOS == false)
        // llama.cpp: EOG = <|endoftext|>, <|im_end|> and <reponame> (taken as the FIM repo token).
        #expect(tok.endOfGeneration == [0, 2, 4])
        #expect(tok.id(of: "<|im_start|>") == 1)
        #expect(tok.id(of: "Ġthe") != nil)
        #expect(tok.tokenText(1) == "<|im_start|>")
        #expect(tok.tokenBytes(2) == Array("<|im_end|>".utf8))
        #expect(tok.decode([1]) == "<|im_start|>")
        #expect(tok.isSpecial(1) && !tok.isSpecial(tok.id(of: "Ġthe")!))
        // Control tokens are parsed only when asked to.
        #expect(tok.encode("<|im_end|>", addBOS: false) == [2])
        #expect(tok.encode("<|im_end|>", addBOS: false, parseSpecial: false).count > 1)
        // Digits are split one by one, and BOS is prepended on request.
        #expect(tok.encode("12345", addBOS: false).count == 5)
        #expect(tok.encode("hi", addBOS: true).first == 1)
    }

    @Test("Qwen2.5's end-of-generation set is llama.cpp's, </s> included")
    func qwenSpecials() throws {
        guard let path = TokenizerTestFiles.model("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf") else { try Test.cancel("Qwen2.5-Coder-0.5B not present") }
        let tok = try TokenizerTestFiles.tokenizer(path)
        #expect(tok.vocabSize == 151_936)
        #expect(tok.endOfGeneration == [128_247, 151_643, 151_645, 151_662, 151_663, 151_664])
        // <tool_call> is user-defined: matched whole even when control tokens are not parsed.
        let toolCall = try #require(tok.id(of: "<tool_call>"))
        #expect(tok.encode("<tool_call>", addBOS: false, parseSpecial: false) == [toolCall])
        // Unused padding tokens have no text.
        #expect(tok.tokenBytes(151_900).isEmpty)
    }

    @Test("the stream decoder holds back characters split across tokens and emits them whole")
    func streamSplitCharacters() throws {
        let tok = try TokenizerTestFiles.smol()
        for text in awkwardTexts {
            let ids = tok.encode(text, addBOS: false)
            var decoder = StreamDecoder(tokenizer: tok)
            var out = ""
            for id in ids {
                let piece = decoder.push(id)
                #expect(!piece.unicodeScalars.contains("\u{FFFD}") || text.unicodeScalars.contains("\u{FFFD}"))
                out += piece
            }
            out += decoder.flush()
            #expect(Array(out.utf8) == Array(text.utf8), "\(text.debugDescription)")
        }
        // An emoji is several byte tokens: nothing comes out until its last byte.
        let ids = tok.encode("🎉", addBOS: false)
        #expect(ids.count > 1)
        var decoder = StreamDecoder(tokenizer: tok)
        for id in ids.dropLast() { #expect(decoder.push(id) == "") }
        #expect(decoder.push(ids.last!) == "🎉")
    }

    @Test("the stream decoder turns bytes that can never form a character into U+FFFD at once")
    func streamInvalidBytes() throws {
        let tok = try byteTokenizer()
        func bytes(_ b: [UInt8]) -> [Int32] { b.map { tok.id(of: byteSpelling($0))! } }
        var d = StreamDecoder(tokenizer: tok)
        // A 4-byte lead and one continuation wait; an ASCII byte then shows they never complete.
        #expect(d.push(bytes([0xF0, 0x9F])) == "")
        #expect(d.push(bytes([0x41])) == "\u{FFFD}A")
        // A stray continuation byte, a byte that starts nothing, a lead with a bad second byte.
        #expect(d.push(bytes([0x80])) == "\u{FFFD}")
        #expect(d.push(bytes([0xFF])) == "\u{FFFD}")
        #expect(d.push(bytes([0xE0, 0x80])) == "\u{FFFD}\u{FFFD}")
        // A character split over three pushes.
        #expect(d.push(bytes([0xE2])) == "")
        #expect(d.push(bytes([0x82])) == "")
        #expect(d.push(bytes([0xAC])) == "€")
        // Flushing an unfinished character gives U+FFFD.
        #expect(d.push(bytes([0xC3])) == "")
        #expect(d.hasPendingBytes)
        #expect(d.flush() == "\u{FFFD}")
        #expect(d.flush() == "")
    }

    @Test("merges apply lowest rank first, leftmost first on ties")
    func mergeOrder() throws {
        let tok = try byteTokenizer(merges: ["b c", "a b", "a a", "aa a"], extra: ["bc", "ab", "aa", "aaa"])
        func ids(_ s: String) -> [String] { tok.encode(s, addBOS: false).map { tok.tokenText($0) } }
        #expect(ids("abc") == ["a", "bc"])        // "b c" outranks "a b"
        #expect(ids("aaa") == ["aaa"])            // "a a" on the left, then "aa a"
        #expect(ids("aaaa") == ["aa", "aa"])      // "a a" twice; nothing merges "aa aa"
        #expect(ids("ab ab") == ["ab", "Ġ", "ab"])
        let pairs = try byteTokenizer(merges: ["a a"], extra: ["aa"])
        #expect(pairs.encode("aaa", addBOS: false).map { pairs.tokenText($0) } == ["aa", "a"])
    }

    @Test("special tokens are cut out longest first, and control tokens only when parsing specials")
    func specialTokens() throws {
        // Types: 256 bytes normal, then <x> control, <x><y> control, <u> user-defined.
        let tok = try byteTokenizer(extra: ["<x>", "<x><y>", "<u>"], types: [3, 3, 4])
        let x = tok.id(of: "<x>")!, xy = tok.id(of: "<x><y>")!, u = tok.id(of: "<u>")!
        #expect(tok.encode("a<x><y>b<x>", addBOS: false).filter { $0 >= 256 } == [xy, x])
        #expect(tok.encode("<u><x>", addBOS: false, parseSpecial: false).filter { $0 >= 256 } == [u])
        #expect(tok.decode(tok.encode("a<x><y>b<u>", addBOS: false)) == "a<x><y>b<u>")
    }

    @Test("pre-tokenizer names: known families load, unknown ones are an error that names them")
    func preTokenizerNames() throws {
        for pre in ["gpt2", "gpt-2", "smollm", "starcoder", "qwen2", "llama-bpe", "llama3", "default", nil] as [String?] {
            _ = try byteTokenizer(pre: pre)
        }
        #expect(throws: TokenizerError.unknownPreTokenizer("klingon", path: "tokenizer")) { try byteTokenizer(pre: "klingon") }
        #expect(String(describing: TokenizerError.unknownPreTokenizer("klingon", path: "x.gguf")).contains("klingon"))
        #expect(try byteTokenizer(pre: "llama-bpe").addBOS == true)
        #expect(try byteTokenizer(pre: "qwen2").addBOS == false)
    }

    @Test("a GGUF with a tokenizer other than byte-level BPE is rejected by name")
    func unsupportedModel() throws {
        let path = Scratch.directory("spm") + "/spm.gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeMinimalGGUF(path: path, strings: ["tokenizer.ggml.model": "llama"])
        #expect(throws: TokenizerError.unsupportedModel("llama", path: path)) { try Tokenizer(path: path) }
        let message = String(describing: TokenizerError.unsupportedModel("llama", path: path))
        #expect(message.contains("'llama'") && message.contains(path))
    }

    @Test("encoding a 2,000-token text takes a few milliseconds, a 100,000-byte word no more than linear time")
    func speed() throws {
        let tok = try TokenizerTestFiles.smol()
        let words = ["the", "model", "tokenizer", "speculative", "decoding", "x", "=", "42;", "\n", "    ", "Ünïcödé", "你好", "🎉", "don't"]
        var rng = SplitMix64(seed: 7)
        var text = ""
        while tok.encode(text, addBOS: false).count < 2000 {
            for _ in 0..<100 { text += words[Int(rng.next() % UInt64(words.count))] + (rng.next() % 3 == 0 ? "" : " ") }
        }
        var best = Double.infinity
        for _ in 0..<5 {
            let t = Date()
            _ = tok.encode(text, addBOS: false)
            best = min(best, Date().timeIntervalSince(t))
        }
        #expect(best < 0.025, "encoding \(tok.encode(text, addBOS: false).count) tokens took \(best * 1000) ms")
        let long = String(repeating: "ab", count: 50_000)
        let t = Date()
        #expect(tok.decode(tok.encode(long, addBOS: false)) == long)
        #expect(Date().timeIntervalSince(t) < 1.0)
    }
}

// MARK: Helpers

/// The GPT-2 byte-level spelling of one byte.
func byteSpelling(_ b: UInt8) -> String {
    var n: UInt32 = 256
    for x in 0..<Int(b) where !(0x21...0x7E ~= x || 0xA1...0xAC ~= x || 0xAE...0xFF ~= x) { n += 1 }
    let printable = 0x21...0x7E ~= Int(b) || 0xA1...0xAC ~= Int(b) || 0xAE...0xFF ~= Int(b)
    return String(Unicode.Scalar(printable ? UInt32(b) : n)!)
}

/// A tokenizer whose first 256 tokens are the bytes (id = byte value), followed by `extra`.
func byteTokenizer(merges: [String] = [], extra: [String] = [], types: [Int]? = nil, pre: String? = "gpt2") throws -> Tokenizer {
    let tokens = (0...255).map { byteSpelling(UInt8($0)) } + extra
    let tokenTypes = types.map { Array(repeating: 1, count: 256) + $0 }
    return try Tokenizer(tokens: tokens, tokenTypes: tokenTypes, merges: merges, pre: pre)
}

/// Writes a GGUF v3 file with no tensors and the given string metadata.
func writeMinimalGGUF(path: String, strings: [String: String]) throws {
    var d = Data()
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    func str(_ s: String) { u64(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8)) }
    u32(0x4655_4747); u32(3); u64(0); u64(UInt64(strings.count))
    for (k, v) in strings.sorted(by: { $0.key < $1.key }) { str(k); u32(8); str(v) }
    try d.write(to: URL(fileURLWithPath: path))
}

/// A small seeded generator so random test inputs repeat.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Asset checks")
struct AssetCheckTests {
    @Test("sha256 of a file (swift-crypto, read in pieces) is the standard digest, and its progress ends at the file's size")
    func sha256() throws {
        let path = NSTemporaryDirectory() + "/relay-sha-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("abc".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try AssetStore().sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // 9 MiB: three pieces; the digest is the one of the whole, whatever the piece size.
        let big = Data((0..<(9 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try big.write(to: URL(fileURLWithPath: path))
        final class Seen: @unchecked Sendable { var last: (Int64, Int64) = (0, 0); var count = 0 }
        let seen = Seen()
        let digest = try AssetStore().sha256(path, progress: ProgressReporter { event in
            if case let .bytes(_, done, total) = event { seen.last = (done, total); seen.count += 1 }
        })
        #expect(digest == SHA256.hash(data: big).map { String(format: "%02x", $0) }.joined())
        #expect(seen.count == 3 && seen.last == (9 << 20, 9 << 20))
    }
}
