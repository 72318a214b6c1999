import Engine
import Foundation
import Relay
@testable import Server
import Testing

/// The CLI (`relay generate --mode`) and the server (`relay_mode`) read mode strings with the one
/// parser: every mode and a table of malformed strings get the same verdict and the same message.
@Suite("mode strings: CLI and server agree", .serialized)
struct ModeParityTests {
    static let malformed = [
        "", "huge", "relaygen:", "relaygen:top-cues", "relaygen:=5", "relaygen:top-cues=0", "relaygen:top-cues=5,,check-every=2",
        "speculative:draft-max=-1", "speculative:draft-max=1,draft-max=2", "large:draft-max=3", "small:x=1", "relayllm:threshold=1",
        "random-router:rate=2", "confidence-router:threshold=1.5", "oracle-router:call=0", "relaygen-sd:adaptive=maybe",
        "relayllm:tags=shown", "speculative:draft-lookup=1", "Relaygen", "relaygen :top-cues=5",
    ]
    static let valid = Mode.names + [" large ", "speculative:draft-max=0", "relaygen-sd:top-cues=5,draft-max=3,adaptive=off",
                                     "random-router:rate=0.013,call=8,tags=hidden", "relayllm:threshold=0.8"]

    static func controller() throws -> CompletionsController {
        let m = try Model(path: smol)
        let served = ServedModels(ids: ["smol"], defaultMode: "large", tokenizer: m.tokenizer, template: ChatTemplate(form: .chatml),
                                  contextSize: 256, sampling: .greedy)
        let metrics = Metrics()
        let pool = SlotPool(pairs: [], queueLimit: 0, settings: Mode.Settings(), tokenizer: m.tokenizer, contextSize: 256, metrics: metrics)
        return CompletionsController(served: served, pool: pool, metrics: metrics, apiKey: nil)
    }

    /// The server's verdict: nil when the request plans, else the 400's message.
    static func server(_ c: CompletionsController, _ mode: String) throws -> String? {
        let body = try JSONSerialization.data(withJSONObject: ["prompt": "Hi", "max_tokens": 1, "relay_mode": mode])
        do {
            _ = try c.plan(CompletionRequest.decode(body), chat: false)
            return nil
        } catch {
            let e = CompletionsController.apiError(error)
            #expect(e.status == 400 && e.param == "relay_mode" && e.code == "invalid_mode", "\(mode)")
            return e.message
        }
    }

    @Test("a malformed mode is refused by both, with the same message")
    func malformedModes() throws {
        let c = try Self.controller()
        for mode in Self.malformed {
            let message = try #require(try Self.server(c, mode), "the server took '\(mode)'")
            let cli = try Relay.run(["generate", "-m", smol, "-p", "Hi", "-n", "1", "--mode", mode])
            #expect(cli.status != 0 && cli.stderr.contains(message), "'\(mode)': \(cli.stderr)")
        }
    }

    @Test("every mode and a valid parameter list is taken by both, and runs from the CLI")
    func validModes() throws {
        let c = try Self.controller()
        for mode in Self.valid {
            #expect(try Self.server(c, mode) == nil, "the server refused '\(mode)'")
            let cli = try Relay.run(["generate", "-m", smol, "-md", smol, "-p", "Hi", "-n", "2", "--temp", "0", "--mode", mode])
            #expect(cli.status == 0, "'\(mode)': \(cli.stderr)")
        }
    }

    @Test("a flag and its mode parameter follow one rule: --draft-max 0 and draft-max=0 both mean no drafting")
    func flagsFollowTheParameterRules() throws {
        let flag = try Relay.run(["generate", "-m", smol, "-md", smol, "-p", "Hi", "-n", "4", "--temp", "0", "--mode", "speculative", "--draft-max", "0", "--json"])
        let parameter = try Relay.run(["generate", "-m", smol, "-md", smol, "-p", "Hi", "-n", "4", "--temp", "0", "--mode", "speculative:draft-max=0", "--json"])
        for r in [flag, parameter] {
            #expect(r.status == 0, "\(r.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            #expect(object?["drafted"] as? Int == 0)
        }
        let bad = try Relay.run(["generate", "-m", smol, "-p", "Hi", "--draft-max=-1"])
        #expect(bad.status != 0 && bad.stderr.contains("--draft-max must be \(Parameters.draftMax.rule)"), "\(bad.stderr)")
        let badParameter = try Relay.run(["generate", "-m", smol, "-p", "Hi", "--mode", "speculative:draft-max=-1"])
        #expect(badParameter.stderr.contains("draft-max must be \(Parameters.draftMax.rule)"), "\(badParameter.stderr)")
    }
}
