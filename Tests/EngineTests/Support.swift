import Assets
import Engine
import Foundation

/// The real models, fetched into $RELAY_HOME by scripts/test.sh.
enum TestModels {
    static let store = AssetStore()
    static let smolPath = store.modelPath("smollm2-135m")
    static let qwenSmallPath = store.modelPath("qwen2.5-coder-0.5b")

    /// Loaded once per test process: a model maps its file and owns its scratch buffers.
    nonisolated(unsafe) static var smol: Model = try! Model(path: smolPath)
    nonisolated(unsafe) static var qwenSmall: Model = try! Model(path: qwenSmallPath)

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
}
