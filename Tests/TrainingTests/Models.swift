import Progress
import Assets
import Engine

/// The test model, loaded once per process (as in RelayTests).
enum Models {
    static let smol = try! Model(path: AssetStore().modelPath("smollm2-135m"))
}

func chatPrompt(_ m: Model, _ text: String) throws -> [Int32] {
    let template = try ChatTemplate.detect(from: m.file.metadata["tokenizer.chat_template"]?.string)
    return m.tokenizer.encode(template.render([ChatMessage(role: "user", content: text)]), addBOS: m.tokenizer.addBOS)
}

/// The lines a training run writes, through the progress bar as a log (not a terminal) gets them.
final class Log: @unchecked Sendable {
    private(set) var text = ""
    lazy var bar = ProgressBar(terminal: false, write: { self.text += $0 })  // a cycle, for a test
    var lines: [String] { text.split(separator: "\n").map(String.init) }
}
