import Foundation
import Testing
import TestSupport

let qwenSmall = home + "/models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"

/// `path` as a symbolic link called `name` in a scratch folder.
func link(_ path: String, as name: String) throws -> String {
    let out = Scratch.directory("link") + "/" + name
    try FileManager.default.createSymbolicLink(atPath: out, withDestinationPath: path)
    return out
}

/// The `relay` binary copied alone into an empty folder: no resource folder beside it.
let copiedBinary: String = {
    let out = Scratch.directory("bin") + "/relay"
    try! FileManager.default.copyItem(atPath: Relay.binary, toPath: out)
    return out
}()

/// Shipped cue files and call heads are found by the models' identities, not their file names,
/// and are compiled into the binary.
@Suite("shipped files on the command line", .serialized)
struct ShippedCLITests {
    @Test("relaygen-sd finds SmolLM2's cue file for SmolLM2 under another name, also from a copy of the binary alone")
    func cuesForRenamedModel() throws {
        let model = try link(smol, as: "smollm2.gguf")
        for binary in [Relay.binary, copiedBinary] {
            let r = try Relay.run(["generate", "--mode", "relaygen-sd", "-m", model, "-md", model, "-p", "What is 7 * 6?",
                                   "-n", "24", "--temp", "0", "-t", "2"], binary: binary)
            #expect(r.status == 0, "\(binary): \(r.stderr)")
            #expect(!r.stderr.contains("warning:"), "\(r.stderr)")
        }
    }

    @Test("relayllm finds the head shipped for Qwen2.5-Coder-0.5B under a lower-case name, also from a copy of the binary alone")
    func headForRenamedModel() throws {
        let model = try link(qwenSmall, as: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        for binary in [Relay.binary, copiedBinary] {
            let r = try Relay.run(["generate", "--mode", "relayllm", "-m", model, "-md", model, "-p", "What is 7 * 6?",
                                   "-n", "16", "--temp", "0", "-t", "2"], binary: binary)
            #expect(r.status == 0, "\(binary): \(r.stderr)")
            // Found, and trained calling the 1.5B rather than this large model, which the warning says.
            #expect(r.stderr.contains("warning: the shipped call head Heads/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.json was trained calling another large model"),
                    "\(r.stderr)")
            #expect(!r.stderr.contains("no call head ships"))
        }
    }

    @Test("a large model of another base gets no cue file: refused with the reason and how to calibrate one")
    func refusedWithReason() throws {
        let r = try Relay.run(["generate", "--mode", "relaygen-sd", "-m", qwenSmall, "-md", qwenSmall, "-p", "Hi", "-n", "4"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("mode 'relaygen-sd' needs a cue file and none fits: no shipped cue file was calibrated with the large model Qwen2.5 Coder 0.5B Instruct"),
                "\(r.stderr)")
        #expect(r.stderr.contains("relay calibrate -m LARGE -md SMALL"), "\(r.stderr)")
        // relayllm runs without a head, saying so and how to train one.
        let bare = try Relay.run(["generate", "--mode", "relayllm", "-m", smol, "-md", smol, "-p", "Hi", "-n", "4", "--temp", "0"])
        #expect(bare.status == 0, "\(bare.stderr)")
        #expect(bare.stderr.contains("warning: no call head ships for the small model") && bare.stderr.contains("relay train-relay"), "\(bare.stderr)")
    }

    @Test("models identity gives one identity for a file under any name")
    func identityCommand() throws {
        let r = try Relay.run(["models", "identity", qwenSmall, try link(qwenSmall, as: "q.gguf")])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 2 && lines[0] == lines[1], "\(r.stdout)")
        let id = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect(id["architecture"] as? String == "qwen2" && id["fileType"] as? String == "Q4_K_M" && id["dim"] as? Int == 896)
        #expect(r.stderr.contains("identity in"))
    }

    @Test("calibrate and train-relay record the identities of both models in what they write")
    func writersRecordIdentities() throws {
        let dir = Scratch.directory("writers")
        let expected = try JSONSerialization.jsonObject(with: Data(try Relay.run(["models", "identity", smol]).stdout.utf8)) as! NSDictionary
        let cues = try Relay.run(["calibrate", "-m", smol, "-md", smol, "--task", "gsm8k", "--offset", "1000", "--limit", "1",
                                  "--max-tokens", "24", "--min-count", "1", "--out", dir + "/cues.json", "-t", "2"])
        #expect(cues.status == 0, "\(cues.stderr)")
        let head = try Relay.run(["train-relay", "-m", smol, "-md", smol, "--task", "gsm8k", "--offset", "1000", "--limit", "1", "--k", "1",
                                  "--max-tokens", "24", "--probes", "0", "--stage", "warmup", "--out", dir + "/head.json", "-t", "2"])
        #expect(head.status == 0, "\(head.stderr)")
        for file in ["cues.json", "head.json"] {
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))) as! [String: Any]
            #expect(object["large"] as? NSDictionary == expected, "\(file)")
            #expect(object["small"] as? NSDictionary == expected, "\(file)")
        }
    }
}
