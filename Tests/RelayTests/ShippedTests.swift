import Assets
import Engine
import Foundation
import GGUF
import Relay
import ShippedFiles
import Testing
import TestSupport

/// `path` under another, lower-case name in a scratch folder: a symbolic link, or a hard link.
func renamed(_ path: String, hard: Bool = false) throws -> String {
    let name = URL(fileURLWithPath: path).lastPathComponent.lowercased().replacingOccurrences(of: "-instruct", with: "")
    let link = Scratch.directory("renamed") + "/" + name
    if hard {
        try FileManager.default.linkItem(atPath: path, toPath: link)
    } else {
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
    }
    return link
}

/// The identity of a GGUF file, computed without loading the model.
func identity(_ path: String) throws -> ModelIdentity {
    let file = try GGUFFile(path: path)
    return ModelIdentity(file: file, config: try ModelConfig(gguf: file), tokens: try file.stringArray(GGUFKey.Tokenizer.tokens))
}

@Suite("Shipped files by model identity", .serialized)
struct ShippedTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/ShippedFiles")

    @Test("the compiled-in files are the JSON files of Sources/ShippedFiles, and each records its models")
    func compiledIn() throws {
        for (sub, files) in [("Cues", ShippedFiles.cues), ("Heads", ShippedFiles.heads)] {
            let dir = Self.folder.appendingPathComponent(sub)
            let onDisk = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
            #expect(files.map(\.name).sorted() == onDisk, "\(sub): list them in ShippedFiles.swift and Package.swift")
            for f in files {
                let bytes = try Data(contentsOf: dir.appendingPathComponent(f.name))
                #expect(Data(f.bytes) == bytes, "\(sub)/\(f.name)")
                if sub == "Cues" {
                    let set = try CueSet.decode(bytes, source: f.name)
                    #expect(set.large != nil && set.small != nil, "\(f.name)")
                } else {
                    let head = try RelayHead.decode(bytes, source: f.name)
                    #expect(head.small != nil && head.large != nil, "\(f.name)")
                }
            }
        }
    }

    @Test("a model's identity is the same under another name, through a symbolic or a hard link")
    func identityIgnoresName() throws {
        let path = Models.qwen.file.path
        let original = ModelIdentity.of(Models.qwen)
        #expect(try identity(path) == original)
        #expect(try identity(renamed(path)) == original)
        #expect(try identity(renamed(path, hard: true)) == original)
        #expect(original.architecture == "qwen2" && original.dim == 896 && original.vocabSize == 151_936 && original.fileType == "Q4_K_M")
        #expect(original.vocabulary.count == 64 && original.sample.count == 64)
        // Computed once per loaded file.
        #expect(ModelIdentity.of(Models.qwen) == original)

        let smol = ModelIdentity.of(Models.smol)
        #expect(smol.likeness(to: original) == .other)
        #expect(smol.differences(from: original).contains("architecture llama, not qwen2"))
        #expect(original.likeness(to: original) == .same)
    }

    @Test("an identity costs milliseconds: a fixed sample of the tensor data, not the whole file")
    func identityIsCheap() throws {
        let file = try GGUFFile(path: Models.qwen.file.path)
        let config = try ModelConfig(gguf: file), tokens = Models.qwen.tokenizer.tokens
        let clock = ContinuousClock()
        var id: ModelIdentity?
        let took = clock.measure { id = ModelIdentity(file: file, config: config, tokens: tokens) }
        #expect(id == ModelIdentity.of(Models.qwen))
        #expect(took < .milliseconds(500), "\(took)")
    }

    @Test("the shipped head is found for Qwen2.5-Coder-0.5B under a lower-case name, and says when the large model is not the one it was trained with")
    func headByIdentity() throws {
        let small = try Model(path: renamed(Models.qwen.file.path))
        let alone = RelayHead.shipped(small: small, large: nil)
        let head = try #require(alone.file)
        #expect(alone.warnings.isEmpty, "\(alone.warnings)")
        #expect(head.small == ModelIdentity.of(small) && head.dim == small.config.dim)
        #expect(head.large?.name == "Qwen2.5 Coder 1.5B Instruct GGUF")
        // The same model as the large one: the head still serves, with a warning naming both.
        let withLarge = RelayHead.shipped(small: small, large: Models.qwen)
        #expect(withLarge.file == head)
        #expect(withLarge.warnings.count == 1)
        #expect(withLarge.warnings.first?.contains("trained calling another large model") == true, "\(withLarge.warnings)")
        #expect(withLarge.warnings.first?.contains("Qwen2.5 Coder 1.5B Instruct") == true, "\(withLarge.warnings)")
        #expect(withLarge.warnings.first?.contains("relay train-relay") == true)
        // relayllm picks it up by default.
        let relay = try #require(try Mode.make("relayllm", sessions: SessionPair(large: Session(model: small, contextSize: 64), small: Session(model: small, contextSize: 64)),
                                                settings: Mode.Settings()) as? RelayLLM)
        #expect((relay.policy as? HeadPolicy)?.head == head)
        // A model of another base gets none, and the reason says how to train one.
        let none = RelayHead.shipped(small: Models.smol, large: nil)
        #expect(none.file == nil)
        #expect(none.reason?.contains("no call head ships for the small model Smollm2 135M") == true, "\(none.reason ?? "")")
        #expect(none.reason?.contains("relay train-relay") == true)
    }

    @Test("the SmolLM2 cue file is found for SmolLM2 under another name; another model is refused with the reason")
    func cuesByIdentity() throws {
        let smol = try Model(path: renamed(Models.smol.file.path, hard: true))
        let lookup = CueSet.shipped(large: smol, small: smol)
        let set = try #require(lookup.file)
        #expect(lookup.warnings.isEmpty, "\(lookup.warnings)")
        #expect(set.cues.map(\.text).contains("So,") && set.large == ModelIdentity.of(smol))
        _ = try Mode.make("relaygen-sd", sessions: SessionPair(large: Session(model: smol, contextSize: 64), small: Session(model: smol, contextSize: 64)),
                           settings: Mode.Settings())

        // The 0.5B Qwen as the large model: the shipped Qwen file is for the 1.5B.
        let refused = CueSet.shipped(large: Models.qwen, small: Models.qwen)
        #expect(refused.file == nil)
        #expect(refused.reason?.contains("no shipped cue file was calibrated with the large model Qwen2.5 Coder 0.5B Instruct") == true, "\(refused.reason ?? "")")
        do {
            _ = try Mode.make("relaygen", sessions: SessionPair(large: Session(model: Models.qwen, contextSize: 64), small: Session(model: Models.qwen, contextSize: 64)),
                               settings: Mode.Settings())
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("needs a cue file and none fits: no shipped cue file"), "\(error)")
            #expect("\(error)".contains("relay calibrate -m LARGE -md SMALL"), "\(error)")
        }
        // The right large model with a small model of another base: refused too (the cues measure the small model).
        #expect(CueSet.shipped(large: smol, small: Models.qwen).reason?.contains("this small model, Qwen2.5 Coder 0.5B") == true)
    }

    @Test("another file of the same base model (other weights) gets the shipped file with a warning that says so")
    func sameBaseWarns() throws {
        // SmolLM2 with one byte of its embedding changed: architecture, sizes and vocabulary agree,
        // the weights do not (as in another quantisation of it).
        let path = Scratch.directory("requantised") + "/smol-q.gguf"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: Models.smol.file.path))
        let embd = try Models.smol.file.tensor("token_embd.weight")
        let at = try #require(bytes.range(of: Data(bytes: embd.data, count: 64)))
        bytes[at.lowerBound + 7] ^= 0x01
        #expect(FileManager.default.createFile(atPath: path, contents: bytes))
        let other = try Model(path: path)
        let id = ModelIdentity.of(other)
        #expect(id.likeness(to: ModelIdentity.of(Models.smol)) == .sameBase)
        #expect(id.differences(from: ModelIdentity.of(Models.smol)) == ["other weights"])

        let lookup = CueSet.shipped(large: other, small: other)
        #expect(lookup.file != nil)
        #expect(lookup.warnings.count == 2, "\(lookup.warnings)")
        #expect(lookup.warnings.first?.contains("another file of the same base model (same architecture, sizes and vocabulary; other weights") == true, "\(lookup.warnings)")
        #expect(lookup.warnings.last?.contains("relay calibrate") == true)
    }

    @Test("recording identities left the shipped head's eval pin as it was")
    func headPinUnchanged() throws {
        // sha256 of Heads/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.json before the identities were added.
        #expect(RelayHead.shippedDigest(for: Models.qwen)?.sha256 == "476a2b7e6d4bd78a2c8de30726f4af4fed1db512826bb75424658a58142693ae")
    }

    @Test("files without identities, given by path, load and run as before")
    func oldFilesByPath() throws {
        let dir = Scratch.directory("old")
        try Data(#"{"model": "x", "cues": [{"text": "So", "delta": 0.1, "count": 3}]}"#.utf8).write(to: URL(fileURLWithPath: dir + "/cues.json"))
        var settings = Mode.Settings()
        settings.cues = try CueSet.load(dir + "/cues.json")
        #expect(settings.cues?.large == nil)
        // The 0.5B pair has no shipped cue file; a given one is used without looking.
        _ = try Mode.make("relaygen", sessions: SessionPair(large: Session(model: Models.qwen, contextSize: 64), small: Session(model: Models.qwen, contextSize: 64)),
                           settings: settings)

        var head = try #require(RelayHead.shipped(small: Models.qwen, large: nil).file)
        (head.small, head.large) = (nil, nil)
        try head.write(to: dir + "/head.json")
        let loaded = try RelayHead.load(dir + "/head.json")
        #expect(loaded.small == nil)
        settings.head = .head(loaded, path: dir + "/head.json")
        let relay = try #require(try Mode.make("relayllm", sessions: SessionPair(large: Session(model: Models.qwen, contextSize: 64), small: Session(model: Models.qwen, contextSize: 64)),
                                                settings: settings) as? RelayLLM)
        #expect((relay.policy as? HeadPolicy)?.head == loaded)
    }
}
