/// Mini-batch training of a `Network` with Adam (lazy, row-wise for embeddings) or SGD.
///
/// A batch is cut into a fixed number of chunks that depends only on the batch size; chunks run
/// in parallel, each through its own `TilePass` (forward and backward over up to `TilePass.defaultRows`
/// examples at a time, dense layers as matrix products) with its own dense gradients, which are
/// added up in a fixed order (`denseGradientHalves`). Embedding gradients are kept per example
/// and summed per touched row in example order. The result is therefore the same for any thread
/// count. Dropout masks are hashes of (seed, step, position, node, entry) (`DropoutMask`), for
/// the same reason. With Adam, each side's embedding rows train in records (`SideRecords`),
/// copied into the network's tables after every epoch.
///
/// With `negatives > 0` (implicit data, BCE) every training pair is a positive, and each epoch
/// draws that many negatives per positive uniformly from the items the user has not interacted
/// with.
public final class NetworkTrainer: Trainer {
    public let network: Network
    public let data: RatingSet
    public var nUsers: Int { network.nUsers }
    let options: TrainOptions
    let loss: Loss
    let negatives: Int
    public let cancel = CancelFlag()
    public let progress = EpochProgress()
    public private(set) var epochsDone = 0
    var step = 0
    let totalSteps: Int
    let batch: Int
    let chunkCount: Int
    /// Examples a tile pass holds: small enough that a tile's values stay in the core's cache.
    let tiles: [TilePass]
    /// Per tile pass: dL/d(output) of its current tile.
    let outputGradients: [Buffer<Float>]
    let paddedWeights: PaddedWeights
    /// Per thread of the team, its own copy of the batch's distinct user rows and item rows:
    /// every thread gives the whole batch its slots (the same slots), and its optimiser step
    /// reads only its own copy. With one copy per table, written by one thread and half read by
    /// the other, each batch's slot arrays went back and forth between the cores' caches.
    let userRows, itemRows: [BatchRows]
    /// Per embedding node outside the side records: each example's gradient of its row (batch ×
    /// padded width), written there by the tile passes. The first example of each touched row
    /// then accumulates the row's total.
    let exampleGradients: [Buffer<Float>?]
    /// Per side (0 users, 1 items), with Adam: the side's embedding rows and their moments in
    /// records (`SideRecords`), when its nodes can share a joint row; else nil.
    let sideRecords: [SideRecords?]
    /// Per side with records: each example's gradient of its joint row (batch × padded joint
    /// width), every node's entries at its offset.
    let sideGradients: [Buffer<Float>?]
    /// Per embedding node: where the tile passes write the batch's example gradients of its
    /// rows (example b's at `base + b · stride`: its own array, or its entries of its side's
    /// joint rows). Raw pointers, worked out once: the chunks read them on every thread.
    let gradientRows: [(base: UnsafeMutablePointer<Float>, stride: Int)?]
    let embeddingNodes: [Int]
    let denseNodes: [Int]
    /// Per dense node: the thread that steps all of it, or nil when every thread steps a
    /// share of its units (`denseStepOwners`).
    let denseOwners: [Int?]
    /// Per example of the batch: the thread that runs its chunk (see `BatchUpdate`); the team
    /// has at most 8 threads.
    let exampleThread: Buffer<UInt8>
    /// Runs each batch's chunks and optimiser step.
    let team: WorkerTeam
    /// Adam's moments of each dense node's kernel.
    let moments: [(m: Buffer<Float>, v: Buffer<Float>)?]
    /// Adam's moments of each embedding node's rows outside the side records, a row's pair side
    /// by side: row r's first moments at r·2w, its second moments right after (w each). A step
    /// fetches one run of cache lines per row instead of two, and a bias row's two moments
    /// share one line.
    let rowMoments: [Buffer<Float>?]
    let biasMoments: [(m: Buffer<Float>, v: Buffer<Float>)?]
    var rng: Xoshiro256
    /// When set, only user-side embedding rows from this row on are updated; every other
    /// parameter stays as it is (folding new users into a trained network).
    public var firstTrainableUser: Int? = nil
    /// Positives per user, sorted (CSR), for rejecting sampled negatives.
    /// With `negatives > 0`: each epoch's negatives.
    let sampler: NegativeSampler?
    /// The epoch's examples (positives and sampled negatives), shuffled. Without negatives this
    /// is `data` itself, reshuffled in place each epoch: no second copy of the ratings.
    let epoch: RatingSet

    /// `sideRecords`: train each side's embedding rows in records when Adam and the network
    /// allow it (`SideRecords`); off only to compare with separate tables in tests.
    public init(network: Network, data: RatingSet, loss: Loss, negatives: Int, options: TrainOptions,
                sideRecords useRecords: Bool = true) throws {
        try options.validate()
        guard data.count > 0 else { throw CoreError.invalid("there are no training ratings") }
        guard (0...100).contains(negatives) else { throw CoreError.invalid("negatives must be in 0...100, got \(negatives)") }
        guard negatives == 0 || loss == .bce else { throw CoreError.invalid("negative sampling needs the bce loss") }
        if negatives == 0 {
            for r in 0..<data.count { try loss.checkTarget(data.ratings[r], at: r) }
        }
        guard data.users.buffer.allSatisfy({ Int($0) < network.nUsers }), data.items.buffer.allSatisfy({ Int($0) < network.nItems }) else {
            throw CoreError.invalid("training pairs refer to rows beyond the network's tables")
        }
        let examples = try MemoryBudget.product([data.count, 1 + negatives], what: "training examples")
        guard examples <= Int(Int32.max) else { throw CoreError.invalid("\(examples) examples per epoch is more than supported") }
        try MemoryBudget.check(bytes: try MemoryBudget.product([examples, 12], what: "training examples"), what: "the epoch's examples")
        let batch = min(options.batchSize, examples)
        let embeddingWidth = network.nodes.reduce(0) { $0 + ($1.kind == .embedding ? $1.units : 0) }
        try MemoryBudget.check(bytes: try MemoryBudget.product([batch, embeddingWidth + 4, 8], what: "batch gradients"),
                               what: "the embedding gradients of a batch")
        self.network = network
        self.data = data
        self.options = options
        self.loss = loss
        self.negatives = negatives
        let chunkCount = max(1, min(8, batch / 64))
        self.batch = batch
        self.chunkCount = chunkCount
        totalSteps = options.epochs * ((examples + batch - 1) / batch)
        let tileCapacity = min(TilePass.defaultRows, (batch + chunkCount - 1) / chunkCount)
        let paddedWeights = PaddedWeights(network: network)
        self.paddedWeights = paddedWeights
        let updateThreads = options.threads == 1 ? 1 : min(8, options.threads <= 0 ? activeProcessorCount() : options.threads)
        // A thread runs its chunks one after another (`thread(ofChunk:)`, computed here before
        // the team exists): their tile passes share one set of tile matrices.
        var scratch: [Int: TileScratch] = [:]
        tiles = try (0..<chunkCount).map { c in
            let owner = c * updateThreads / chunkCount
            if scratch[owner] == nil { scratch[owner] = try TileScratch(network: network, capacity: tileCapacity) }
            return try TilePass(network: network, weights: paddedWeights, capacity: tileCapacity, scratch: scratch[owner])
        }
        outputGradients = (0..<chunkCount).map { _ in Buffer(repeating: 0, count: tileCapacity) }
        userRows = (0..<updateThreads).map { _ in BatchRows(rows: network.nUsers, capacity: batch) }
        itemRows = (0..<updateThreads).map { _ in BatchRows(rows: network.nItems, capacity: batch) }
        let adam = options.optimizer == .adam
        let sideRecords = adam && useRecords ? [SideRecords(network: network, side: 0), SideRecords(network: network, side: 1)] : [nil, nil]
        self.sideRecords = sideRecords
        let sideGradients = sideRecords.map { r in r.map { Buffer<Float>(repeating: 0, count: batch * TileKernels.padded($0.width)) } }
        self.sideGradients = sideGradients
        let exampleGradients = network.nodes.map { n -> Buffer<Float>? in
            guard n.isTrainedEmbedding, sideRecords[n.side] == nil else { return nil }
            return Buffer(repeating: 0, count: batch * TileKernels.padded(n.units))
        }
        self.exampleGradients = exampleGradients
        gradientRows = network.nodes.indices.map { j in
            if let rows = exampleGradients[j] { return (rows.base, TileKernels.padded(network.nodes[j].units)) }
            let n = network.nodes[j]
            guard n.isTrainedEmbedding, let records = sideRecords[n.side], let at = records.offset(ofNode: j) else { return nil }
            return (sideGradients[n.side]!.base + at, TileKernels.padded(records.width))
        }
        embeddingNodes = network.nodes.indices.filter { network.nodes[$0].isTrainedEmbedding }
        denseNodes = network.nodes.indices.filter { network.nodes[$0].kind == .dense }
        exampleThread = Buffer(repeating: 0, count: batch)
        team = WorkerTeam(size: updateThreads)
        denseOwners = Self.denseStepOwners(network: network, threads: updateThreads)
        moments = network.nodes.indices.map { j in
            guard adam, network.nodes[j].kind == .dense, let w = network.weights[j] else { return nil }
            return (Buffer<Float>(repeating: 0, count: w.count), Buffer<Float>(repeating: 0, count: w.count))
        }
        rowMoments = network.nodes.indices.map { j in
            guard adam, network.nodes[j].isTrainedEmbedding, sideRecords[network.nodes[j].side] == nil,
                  let w = network.weights[j] else { return nil }
            return Buffer<Float>(repeating: 0, count: 2 * w.count, hugePages: true)
        }
        biasMoments = network.biases.map { b in
            guard adam, let b else { return nil }
            return (Buffer<Float>(repeating: 0, count: b.count), Buffer<Float>(repeating: 0, count: b.count))
        }
        for tile in tiles {
            for (j, n) in network.nodes.enumerated() where n.isTrainedEmbedding && adam {
                if let rows = rowMoments[j] {
                    tile.prefetchAlong(node: j, rows.base)
                    continue
                }
                // A side's records: each node reads its entries of the joint row; the side's
                // first node fetches the whole record, its rows into L1 and its moments into L2.
                let records = sideRecords[n.side]!, leads = records.nodes[0] == j
                tile.readRows(node: j, from: records.base + records.offset(ofNode: j)!, stride: records.stride,
                              fetch: leads ? records.width : 0)
                if leads { tile.prefetchAlong(node: j, records.base + records.width, stride: records.stride, count: 2 * records.width) }
            }
        }
        rng = Xoshiro256(seed: options.seed ^ 0x4E45_5457)
        epoch = negatives > 0 ? RatingSet(zeros: examples) : data
        sampler = negatives > 0 ? NegativeSampler(positives: data, nUsers: network.nUsers, nItems: network.nItems,
                                                  negatives: negatives) : nil
        try initialiseOutputBias()
        paddedWeights.refresh()  // the output bias was just set
    }

    /// Starts the output near the mean target, as a constant model would predict.
    func initialiseOutputBias() throws {
        guard !network.initialisedFromData, let (node, squash) = network.outputDense else { return }
        let mean = negatives > 0 ? 1.0 / Double(1 + negatives) : data.mean
        var value = loss.constantOutput(mean: mean)
        if loss != .bce, let (lo, hi) = squash {
            let t = min(max((mean - lo) / (hi - lo), 1e-3), 1 - 1e-3)
            value = _log(t / (1 - t))
        }
        try network.useGuard.withWriting {
            network.biases[node]!.base.update(repeating: Float(value), count: network.biases[node]!.count)
            network.initialisedFromData = true
        }
    }

    /// Fills the epoch's examples (positives plus fresh negatives) and shuffles them.
    func prepareEpoch() -> Int {
        guard let sampler else {
            epoch.shuffle(using: &rng)
            return data.count
        }
        let n = sampler.fill(epoch, from: data, using: &rng)
        epoch.shuffle(using: &rng)
        return n
    }

    public func runEpoch() throws -> EpochStats {
        try network.useGuard.withWriting { try runEpochLocked() }
    }

    func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        defer { storeRecords() }  // also after an interruption: the network holds every step taken
        let n = prepareEpoch()
        progress.start(total: n)
        var lossSum = 0.0, absSum = 0.0
        var lo = 0
        while lo < n {
            if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
            let hi = min(lo + batch, n)
            let (l, a) = runBatch(lo..<hi)
            lossSum += l; absSum += a
            progress.add(hi - lo, loss: l)
            lo = hi
        }
        epochsDone += 1
        return EpochStats(loss: lossSum / Double(n), mae: absSum / Double(n), seconds: monotonicSeconds() - start)
    }

    /// Forward and backward over one batch in chunks, then one optimiser step.
    func runBatch(_ range: Range<Int>) -> (Double, Double) {
        let size = range.count
        let scale = 1 / Float(size)
        let chunksUsed = min(chunkCount, size)
        var partial = [Double](repeating: 0, count: 2 * chunksUsed)
        let stepSeed = options.seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15
        let lossKind = loss
        let us = epoch.users.base + range.lowerBound, its = epoch.items.base + range.lowerBound
        let ts = epoch.ratings.base + range.lowerBound
        let users = userRows, items = itemRows
        let owners = exampleThread.base
        let buffers = UncheckedSendable((us, its, ts))
        partial.withUnsafeMutableBufferPointer { partialBuffer in
            let out = UncheckedSendable(partialBuffer.baseAddress!)
            let body = { (c: Int) in
                let (us, its, ts) = buffers.value
                let tile = self.tiles[c], gOut = self.outputGradients[c].base
                let lo = size * c / chunksUsed, hi = size * (c + 1) / chunksUsed
                (owners + lo).update(repeating: UInt8(self.thread(ofChunk: c)), count: hi - lo)
                var lossSum = 0.0, absSum = 0.0
                var at = lo
                while at < hi {
                    let n = min(tile.capacity, hi - at)
                    let first = range.lowerBound + at
                    tile.forward(users: us + at, items: its + at, count: n, dropoutSeeds: { stepSeed &+ UInt64(first + $0) })
                    for b in 0..<n {
                        let (value, absError, gradient) = lossKind.evaluate(output: tile.output(b), target: ts[at + b])
                        lossSum += value; absSum += absError
                        gOut[b] = gradient * scale
                    }
                    for j in self.embeddingNodes {
                        let rows = self.gradientRows[j]!
                        tile.redirectGradient(node: j, to: rows.base + at &* rows.stride, stride: rows.stride)
                    }
                    tile.backward(count: n, gOut: gOut, fresh: at == lo)
                    at += n
                }
                out.value[2 * c] = lossSum
                out.value[2 * c + 1] = absSum
            }
            if team.size == 1 || chunksUsed == 1 {
                for rows in users { rows.assign(us, count: size) }
                for rows in items { rows.assign(its, count: size) }
                for c in 0..<chunksUsed { body(c) }
                sumDenseGradients(ranBy: 0, chunksUsed: chunksUsed)
            } else {
                team.run { t in
                    // The batch's distinct users and items (for the optimiser step) get their
                    // slots in each thread's copy (one per participant), beside the chunks;
                    // a worker's item slots wait for the optimiser step (see below).
                    users[t].assign(us, count: size)
                    if t == 0 { items[t].assign(its, count: size) }
                    for c in 0..<chunksUsed where self.thread(ofChunk: c) == t { body(c) }
                    self.sumDenseGradients(ranBy: t, chunksUsed: chunksUsed)
                }
            }
        }
        step += 1
        let update = BatchUpdate(trainer: self, chunksUsed: chunksUsed, examples: size, scale: scale)
        let threads = team.size, workersAssignLate = team.size > 1 && chunksUsed > 1
        team.run { t in
            // The workers give their copies the batch's item slots here rather than beside the
            // chunks: a worker starts each step a little after the calling thread, which also
            // steps the largest dense layer, so the chunks' step waited for the workers and this
            // one for the caller.
            if workersAssignLate && t > 0 { items[t].assign(its, count: size) }
            update.run(thread: t, of: threads)
        }
        var l = 0.0, a = 0.0
        for c in 0..<chunksUsed { l += partial[2 * c]; a += partial[2 * c + 1] }
        return (l, a)
    }

    /// Copies the side records' rows into the network's tables, each thread a share of them.
    func storeRecords() {
        let sides = sideRecords.compactMap { $0 }
        guard !sides.isEmpty else { return }
        let network = self.network, threads = team.size
        team.run { t in
            for records in sides { records.store(to: network, rows: (records.rows * t / threads)..<(records.rows * (t + 1) / threads)) }
        }
    }

    deinit { team.shutdown() }
}
