//! Coalescing: the resources of one read command become as few Modbus read requests as the
//! register map allows.
//!
//! Resources of the same table are sorted by address and joined into one request while the
//! addresses between them (not asked for) number at most `max_gap` and the request stays
//! within the PDU limit of its table (125 registers, 2000 bits). Overlapping resources (two
//! views of one register, several bits of one register) share their addresses.

use crate::resource::{Register, Table};

/// One read request and the resources it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The table read.
    pub table: Table,
    /// The first address read.
    pub start: u16,
    /// How many registers or bits are read.
    pub count: u16,
    /// Indexes of the resources (in the slice given to [`plan`]) it answers.
    pub members: Vec<usize>,
}

impl Block {
    /// Whether the block reads addresses that none of its resources asked for.
    pub fn has_gaps(&self, registers: &[Register]) -> bool {
        let asked: u32 = {
            let mut spans: Vec<(u32, u32)> =
                self.members.iter().map(|&i| (u32::from(registers[i].address), registers[i].end())).collect();
            spans.sort_unstable();
            let mut covered = 0;
            let mut reach = 0;
            for (start, end) in spans {
                let start = start.max(reach);
                if end > start {
                    covered += end - start;
                }
                reach = reach.max(end);
            }
            covered
        };
        asked < u32::from(self.count)
    }
}

/// The read requests answering `members` of `registers`, joined across gaps of at most
/// `max_gap` addresses.
pub fn plan(registers: &[Register], members: impl IntoIterator<Item = usize>, max_gap: u16) -> Vec<Block> {
    let mut order: Vec<usize> = members.into_iter().collect();
    order.sort_by_key(|&i| (registers[i].table, registers[i].address, registers[i].count));
    let mut blocks: Vec<Block> = Vec::new();
    for i in order {
        let r = &registers[i];
        if let Some(last) = blocks.last_mut() {
            let last_end = u32::from(last.start) + u32::from(last.count);
            let new_end = last_end.max(r.end());
            let joins = last.table == r.table
                && u32::from(r.address) <= last_end + u32::from(max_gap)
                && new_end - u32::from(last.start) <= u32::from(r.table.max_read());
            if joins {
                last.count = (new_end - u32::from(last.start)) as u16;
                last.members.push(i);
                continue;
            }
        }
        blocks.push(Block { table: r.table, start: r.address, count: r.count, members: vec![i] });
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxedge_contracts::ValueType;
    use oxedge_device_sdk::CommandRequest;
    use serde_json::json;

    fn reg(table: &str, address: u16, vt: ValueType) -> Register {
        let Some(attributes) = json!({"primaryTable": table, "startingAddress": address}).as_object().cloned() else {
            unreachable!()
        };
        Register::parse(&CommandRequest { resource_name: format!("{table}{address}"), attributes, value_type: vt })
            .unwrap()
    }

    #[test]
    fn contiguous_and_near_resources_of_one_table_make_one_request() {
        let regs = vec![
            reg("HOLDING_REGISTERS", 5, ValueType::Int16),
            reg("COILS", 14, ValueType::Bool),
            reg("HOLDING_REGISTERS", 1, ValueType::Int16),
            reg("HOLDING_REGISTERS", 2, ValueType::Int32),
            reg("COILS", 0, ValueType::Bool),
        ];
        let blocks = plan(&regs, 0..regs.len(), 16);
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].table, blocks[0].start, blocks[0].count), (Table::Coils, 0, 15));
        assert_eq!((blocks[1].table, blocks[1].start, blocks[1].count), (Table::HoldingRegisters, 1, 5));
        assert_eq!(blocks[1].members, vec![2, 3, 0]);
        assert!(blocks[1].has_gaps(&regs));
        // Without gaps: the coils and register 5 stand alone.
        let blocks = plan(&regs, 0..regs.len(), 0);
        assert_eq!(blocks.len(), 4);
        assert!(!blocks.iter().any(|b| b.has_gaps(&regs)));
    }

    #[test]
    fn requests_stay_within_the_pdu_limits() {
        let regs: Vec<Register> = (0..200).map(|a| reg("INPUT_REGISTERS", a, ValueType::Uint16)).collect();
        let blocks = plan(&regs, 0..regs.len(), 0);
        assert_eq!(blocks.iter().map(|b| b.count).collect::<Vec<_>>(), vec![125, 75]);
        let bits: Vec<Register> = (0..2500).map(|a| reg("DISCRETES_INPUT", a, ValueType::Bool)).collect();
        let blocks = plan(&bits, 0..bits.len(), 0);
        assert_eq!(blocks.iter().map(|b| b.count).collect::<Vec<_>>(), vec![2000, 500]);
    }

    #[test]
    fn overlapping_resources_share_addresses() {
        let regs = vec![reg("HOLDING_REGISTERS", 0, ValueType::Uint32), reg("HOLDING_REGISTERS", 1, ValueType::Uint16)];
        let blocks = plan(&regs, 0..2, 0);
        assert_eq!((blocks.len(), blocks[0].count), (1, 2));
        assert!(!blocks[0].has_gaps(&regs));
    }
}
