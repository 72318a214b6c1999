import Foundation
import GGUF
import Testing
import TestSupport

/// The real SmolLM2 model, fetched into $RELAY_HOME by scripts/test.sh.
let smolPath: String = {
    let home = ProcessInfo.processInfo.environment["RELAY_HOME"] ?? NSHomeDirectory() + "/.cache/relay"
    return home + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
}()

/// Writes `bytes` to a fresh temporary file and returns its path.
func temporaryFile(_ bytes: [UInt8], name: String = "test.gguf") -> String {
    let dir = URL(fileURLWithPath: Scratch.directory("gguf"))
    let path = dir.appendingPathComponent(name).path
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

func realHeader(_ count: Int) throws -> [UInt8] {
    let h = try #require(FileHandle(forReadingAtPath: smolPath))
    defer { try? h.close() }
    return [UInt8](h.readData(ofLength: count))
}

@Suite("GGUF reader")
struct GGUFReaderTests {
    @Test("reads SmolLM2's metadata and tensor directory")
    func readsRealModel() throws {
        let f = try GGUFFile(path: smolPath)
        #expect(f.version == 3)
        #expect(try f.string(GGUFKey.architecture) == "llama")
        #expect(try f.int("llama.block_count") == 30)
        #expect(try f.int("llama.embedding_length") == 576)
        #expect(try f.string(GGUFKey.Tokenizer.pre) == "smollm")
        #expect(try f.stringArray(GGUFKey.Tokenizer.tokens).count == 49152)
        #expect(f.tensors.count == 272)
        let embd = try f.tensor("token_embd.weight")
        #expect(embd.type == .q8_0)
        #expect(embd.dims == [576, 49152])
        #expect(try f.tensor("blk.0.attn_q.weight").type == .q4_1)
    }

    @Test("a missing file is a clear error")
    func missingFile() {
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
        do { _ = try GGUFFile(path: "/nonexistent/model.gguf") } catch {
            #expect("\(error)".contains("cannot open /nonexistent/model.gguf"))
        }
    }

    @Test("a wrong magic is named as such")
    func wrongMagic() throws {
        var bytes = try realHeader(4096)
        bytes[0] = 0x7F; bytes[1] = 0x45; bytes[2] = 0x4C; bytes[3] = 0x46
        let path = temporaryFile(bytes)
        do { _ = try GGUFFile(path: path); Issue.record("no error") } catch {
            #expect("\(error)".contains("is not a GGUF file"))
        }
    }

    @Test("an unsupported version is named")
    func badVersion() throws {
        var bytes = try realHeader(4096)
        bytes[4] = 9
        do { _ = try GGUFFile(path: temporaryFile(bytes)); Issue.record("no error") } catch {
            #expect("\(error)".contains("unsupported GGUF version 9"))
        }
    }

    @Test("a file truncated inside the metadata or the tensor data is a clear error", arguments: [10, 3000, 2_000_000, 98_000_000])
    func truncated(length: Int) throws {
        let bytes = try realHeader(length)
        do { _ = try GGUFFile(path: temporaryFile(bytes)); Issue.record("no error") } catch {
            #expect("\(error)".contains("truncated"), "\(error)")
        }
    }

    @Test("corrupted counts and lengths never crash", arguments: 0..<64)
    func corrupted(seed: Int) throws {
        // Overwrite a few header bytes with random values: every outcome must be an error or a valid parse.
        var bytes = try realHeader(1_200_000)
        var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        func next() -> Int {   // SplitMix64, so a failing case can be replayed
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int(truncatingIfNeeded: (z ^ (z >> 31)) >> 1)
        }
        for _ in 0..<4 { bytes[8 + next() % 60_000] = UInt8(next() % 256) }
        _ = try? GGUFFile(path: temporaryFile(bytes))
    }

    @Test("an unknown tensor type id is named")
    func unknownTensorType() throws {
        // Find the first tensor info (name "token_embd.weight") and overwrite its type id.
        var bytes = try realHeader((try FileManager.default.attributesOfItem(atPath: smolPath)[.size] as! NSNumber).intValue)
        let name = Array("token_embd.weight".utf8)
        var i = 0
        while i < bytes.count - name.count, Array(bytes[i ..< i + name.count]) != name || bytes[i + name.count] != 2 { i += 1 }
        // name, n_dims (u32) = 2, two u64 dims, then the u32 type
        let typeAt = i + name.count + 4 + 16
        bytes[typeAt] = 99
        do { _ = try GGUFFile(path: temporaryFile(bytes)); Issue.record("no error") } catch {
            #expect("\(error)".contains("unknown type id 99"), "\(error)")
        }
    }
}
