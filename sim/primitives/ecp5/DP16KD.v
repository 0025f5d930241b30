// Behavioural model of the Lattice ECP5 DP16KD block RAM, for simulating the chip as built for an ECP5
// (hw.core.WeightBank with platform.family == "ecp5"). Only the configuration WeightBank uses is modelled:
// the 512 x 36 pseudo-dual-port mode (DATA_WIDTH_A = DATA_WIDTH_B = 36; port A writes, port B reads), as
// Yosys's brams_map_16kd.v maps a 512 x 36 memory: word address on AD*13..AD*5, bits 0-17 of a word on port
// A's data pins and 18-35 on port B's, ADA3..ADA0 the write enables of the four 9-bit bytes, INITVAL_xx
// holding 16 18-bit halves (low half first) at a stride of 20 bits. Read: CEB latches the addressed word.
// The low half leaves on port A's output pins and the high half on port B's, each through its port's output
// register: with REGMODE_x = "OUTREG" it loads the latch's half when OCEx is high and clears on RSTx
// (RESETMODE = "SYNC"); with "NOREG" the latch drives the pins (nextpnr times DOA by REGMODE_A and DOB by
// REGMODE_B). The two REGMODEs must match (a word half registered and half not is refused, not modelled);
// any other configuration stops the run.
// Lattice TN1264 (ECP5 and ECP5-5G Memory Usage Guide) describes the primitive; this model is ours.
`timescale 1ns / 1ps
module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0, ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0, CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0, DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0, ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0, CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0, DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter GSR = "ENABLED";
  parameter [319:0] INITVAL_00 = 320'h0;
  parameter [319:0] INITVAL_01 = 320'h0;
  parameter [319:0] INITVAL_02 = 320'h0;
  parameter [319:0] INITVAL_03 = 320'h0;
  parameter [319:0] INITVAL_04 = 320'h0;
  parameter [319:0] INITVAL_05 = 320'h0;
  parameter [319:0] INITVAL_06 = 320'h0;
  parameter [319:0] INITVAL_07 = 320'h0;
  parameter [319:0] INITVAL_08 = 320'h0;
  parameter [319:0] INITVAL_09 = 320'h0;
  parameter [319:0] INITVAL_0A = 320'h0;
  parameter [319:0] INITVAL_0B = 320'h0;
  parameter [319:0] INITVAL_0C = 320'h0;
  parameter [319:0] INITVAL_0D = 320'h0;
  parameter [319:0] INITVAL_0E = 320'h0;
  parameter [319:0] INITVAL_0F = 320'h0;
  parameter [319:0] INITVAL_10 = 320'h0;
  parameter [319:0] INITVAL_11 = 320'h0;
  parameter [319:0] INITVAL_12 = 320'h0;
  parameter [319:0] INITVAL_13 = 320'h0;
  parameter [319:0] INITVAL_14 = 320'h0;
  parameter [319:0] INITVAL_15 = 320'h0;
  parameter [319:0] INITVAL_16 = 320'h0;
  parameter [319:0] INITVAL_17 = 320'h0;
  parameter [319:0] INITVAL_18 = 320'h0;
  parameter [319:0] INITVAL_19 = 320'h0;
  parameter [319:0] INITVAL_1A = 320'h0;
  parameter [319:0] INITVAL_1B = 320'h0;
  parameter [319:0] INITVAL_1C = 320'h0;
  parameter [319:0] INITVAL_1D = 320'h0;
  parameter [319:0] INITVAL_1E = 320'h0;
  parameter [319:0] INITVAL_1F = 320'h0;
  parameter [319:0] INITVAL_20 = 320'h0;
  parameter [319:0] INITVAL_21 = 320'h0;
  parameter [319:0] INITVAL_22 = 320'h0;
  parameter [319:0] INITVAL_23 = 320'h0;
  parameter [319:0] INITVAL_24 = 320'h0;
  parameter [319:0] INITVAL_25 = 320'h0;
  parameter [319:0] INITVAL_26 = 320'h0;
  parameter [319:0] INITVAL_27 = 320'h0;
  parameter [319:0] INITVAL_28 = 320'h0;
  parameter [319:0] INITVAL_29 = 320'h0;
  parameter [319:0] INITVAL_2A = 320'h0;
  parameter [319:0] INITVAL_2B = 320'h0;
  parameter [319:0] INITVAL_2C = 320'h0;
  parameter [319:0] INITVAL_2D = 320'h0;
  parameter [319:0] INITVAL_2E = 320'h0;
  parameter [319:0] INITVAL_2F = 320'h0;
  parameter [319:0] INITVAL_30 = 320'h0;
  parameter [319:0] INITVAL_31 = 320'h0;
  parameter [319:0] INITVAL_32 = 320'h0;
  parameter [319:0] INITVAL_33 = 320'h0;
  parameter [319:0] INITVAL_34 = 320'h0;
  parameter [319:0] INITVAL_35 = 320'h0;
  parameter [319:0] INITVAL_36 = 320'h0;
  parameter [319:0] INITVAL_37 = 320'h0;
  parameter [319:0] INITVAL_38 = 320'h0;
  parameter [319:0] INITVAL_39 = 320'h0;
  parameter [319:0] INITVAL_3A = 320'h0;
  parameter [319:0] INITVAL_3B = 320'h0;
  parameter [319:0] INITVAL_3C = 320'h0;
  parameter [319:0] INITVAL_3D = 320'h0;
  parameter [319:0] INITVAL_3E = 320'h0;
  parameter [319:0] INITVAL_3F = 320'h0;

  reg [35:0] mem [0:511];
  reg [35:0] latch = 36'h0;
  reg [35:0] out = 36'h0;
  wire [8:0] write_addr = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5};
  wire [8:0] read_addr = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5};
  wire [35:0] write_data = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0, DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [35:0] read_data = REGMODE_B == "OUTREG" ? out : latch;      // REGMODE_A == REGMODE_B (checked)
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0, DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = read_data;

  task load_row(input integer row, input [319:0] value);
    integer i;
    for (i = 0; i < 16; i = i + 1)
      if (i % 2 == 0)
        mem[row * 8 + i / 2][17:0] = value[i * 20 +: 18];
      else
        mem[row * 8 + i / 2][35:18] = value[i * 20 +: 18];
  endtask

  initial begin
    if (DATA_WIDTH_A != 36 || DATA_WIDTH_B != 36 || REGMODE_A != REGMODE_B || RESETMODE != "SYNC"
        || (REGMODE_B != "OUTREG" && REGMODE_B != "NOREG")) begin
      $display("DP16KD model: only the 512 x 36 pseudo-dual-port mode with a synchronous reset and equal REGMODEs is modelled");
      $finish;
    end
    load_row(0, INITVAL_00);
    load_row(1, INITVAL_01);
    load_row(2, INITVAL_02);
    load_row(3, INITVAL_03);
    load_row(4, INITVAL_04);
    load_row(5, INITVAL_05);
    load_row(6, INITVAL_06);
    load_row(7, INITVAL_07);
    load_row(8, INITVAL_08);
    load_row(9, INITVAL_09);
    load_row(10, INITVAL_0A);
    load_row(11, INITVAL_0B);
    load_row(12, INITVAL_0C);
    load_row(13, INITVAL_0D);
    load_row(14, INITVAL_0E);
    load_row(15, INITVAL_0F);
    load_row(16, INITVAL_10);
    load_row(17, INITVAL_11);
    load_row(18, INITVAL_12);
    load_row(19, INITVAL_13);
    load_row(20, INITVAL_14);
    load_row(21, INITVAL_15);
    load_row(22, INITVAL_16);
    load_row(23, INITVAL_17);
    load_row(24, INITVAL_18);
    load_row(25, INITVAL_19);
    load_row(26, INITVAL_1A);
    load_row(27, INITVAL_1B);
    load_row(28, INITVAL_1C);
    load_row(29, INITVAL_1D);
    load_row(30, INITVAL_1E);
    load_row(31, INITVAL_1F);
    load_row(32, INITVAL_20);
    load_row(33, INITVAL_21);
    load_row(34, INITVAL_22);
    load_row(35, INITVAL_23);
    load_row(36, INITVAL_24);
    load_row(37, INITVAL_25);
    load_row(38, INITVAL_26);
    load_row(39, INITVAL_27);
    load_row(40, INITVAL_28);
    load_row(41, INITVAL_29);
    load_row(42, INITVAL_2A);
    load_row(43, INITVAL_2B);
    load_row(44, INITVAL_2C);
    load_row(45, INITVAL_2D);
    load_row(46, INITVAL_2E);
    load_row(47, INITVAL_2F);
    load_row(48, INITVAL_30);
    load_row(49, INITVAL_31);
    load_row(50, INITVAL_32);
    load_row(51, INITVAL_33);
    load_row(52, INITVAL_34);
    load_row(53, INITVAL_35);
    load_row(54, INITVAL_36);
    load_row(55, INITVAL_37);
    load_row(56, INITVAL_38);
    load_row(57, INITVAL_39);
    load_row(58, INITVAL_3A);
    load_row(59, INITVAL_3B);
    load_row(60, INITVAL_3C);
    load_row(61, INITVAL_3D);
    load_row(62, INITVAL_3E);
    load_row(63, INITVAL_3F);
  end

  always @(posedge CLKA)
    if (CEA && WEA) begin
      if (ADA0) mem[write_addr][8:0] <= write_data[8:0];
      if (ADA1) mem[write_addr][17:9] <= write_data[17:9];
      if (ADA2) mem[write_addr][26:18] <= write_data[26:18];
      if (ADA3) mem[write_addr][35:27] <= write_data[35:27];
    end

  always @(posedge CLKB)
    if (CEB)
      latch <= mem[read_addr];

  always @(posedge CLKA)                 // port A's output register: the low half
    if (RSTA)
      out[17:0] <= 18'h0;
    else if (OCEA)
      out[17:0] <= latch[17:0];

  always @(posedge CLKB)                 // port B's: the high half
    if (RSTB)
      out[35:18] <= 18'h0;
    else if (OCEB)
      out[35:18] <= latch[35:18];
endmodule
