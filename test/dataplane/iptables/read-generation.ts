// Prints nf_tables' ruleset generation of the network namespace it runs in (`ip netns exec NS
// node read-generation.js`), or "none": how the contract reads a private namespace's generation.
import { NftGeneration } from '../../../src/dataplane/iptables/nft-generation.js';

const reader = NftGeneration.open();
const g = reader ? await reader.read() : undefined;
reader?.close();
process.stdout.write(`${g === undefined ? `none ${reader?.lastProblem ?? 'no socket'}` : String(g)}\n`);
