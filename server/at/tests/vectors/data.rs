// Replies as real modems print them, each with the values it must give.
//
// Columns: (source, the line as received, what it must parse to).
// Expected grammar (see `render` in ../vectors.rs):
//   final:<text>      a final result code, shown as `<text>` (`ResultCode`'s Display)
//   info              not a final result (information text, unsolicited)
//   reg:stat=S mode=N area=A cell=C act=T rac=R   a registration line (`-` = absent;
//                     mode is `<n>` of a read answer, `-` for an unsolicited line)
//   reg:none          not a valid registration line
//   csq:R,B | csq:none
//   cops:M,<name>,<act> | cops:none
//   cpin:<code> | cpin:none
//
// "MM <name>" = ModemManager, src/tests/test-modem-helpers.c (captures from the named modem);
// "MM at-serial-port" = ModemManager src/tests/test-at-serial-port.c (response parser cases);
// "MM gsm-port.conf" = ModemManager src/plugins/tests/gsm-port.conf (a recorded GSM port).
pub const VECTORS: &[(&str, &str, &str)] = &[
    // ---- Final results (V.250 6.2.7, 27.007 9.2, 27.005 3.2.5, vendor) ----
    ("V.250 verbose OK; every modem", "OK", "final:OK"),
    ("V.250 numeric OK (ATV0)", "0", "final:OK"),
    ("V.250 numeric ERROR (ATV0); Telit LE910 manual 3.2.2", "4", "final:ERROR"),
    ("V.250 numeric NO CARRIER (ATV0)", "3", "final:NO CARRIER"),
    ("V.250 numeric BUSY / NO ANSWER (ATV0)", "7", "final:BUSY"),
    ("V.250 numeric NO DIALTONE (ATV0)", "6", "final:NO DIALTONE"),
    ("MM at-serial-port: NO DIALTONE", "NO DIALTONE", "final:NO DIALTONE"),
    ("MM at-serial-port: NO ANSWER", "NO ANSWER", "final:NO ANSWER"),
    ("Telit HSPA+ AT reference, AT+CPIN? with no SIM (+CMEE=1)", "+CME ERROR: 10", "final:+CME ERROR: 10"),
    ("MM at-serial-port: numeric CME", "+CME ERROR: 123", "final:+CME ERROR: 123"),
    ("MM at-serial-port: verbose CME (+CMEE=2)", "+CME ERROR: raspberry", "final:+CME ERROR: raspberry"),
    ("MM test-modem-helpers: CPIN answered CME 100", "+CME ERROR: 100", "final:+CME ERROR: 100"),
    ("27.007 9.1 verbose form (+CMEE=2), Quectel EC25 with no SIM", "+CME ERROR: SIM not inserted", "final:+CME ERROR: SIM not inserted"),
    ("MM at-serial-port: numeric CMS", "+CMS ERROR: 456", "final:+CMS ERROR: 456"),
    ("MM at-serial-port: verbose CMS", "+CMS ERROR: bananas", "final:+CMS ERROR: bananas"),
    ("MM at-serial-port: Motorola EZX vendor final", "MODEM ERROR: 5", "final:MODEM ERROR: 5"),
    ("MM at-serial-port: Huawei/ZTE vendor final", "COMMAND NOT SUPPORT", "final:COMMAND NOT SUPPORT"),
    ("MM mm-serial-parsers.c: Samsung Z810 'not available'", "NA", "final:NA"),
    ("MM at-serial-port: not a final", "UNKNOWN COMMAND", "info"),
    ("MM at-serial-port: MODEM ERROR needs a number", "MODEM ERROR: apple", "info"),
    ("Multi-Tech CDMA AT manual, CONNECT with speed", "CONNECT 9600", "final:CONNECT 9600"),
    ("USR Courier, CONNECT with protocol", "CONNECT 28800/ARQ/V34/LAPM/V42BIS", "final:CONNECT 28800/ARQ/V34/LAPM/V42BIS"),
    ("Huawei E173 ATD*99# (HSPA rate)", "CONNECT 7200000", "final:CONNECT 7200000"),
    ("V.250 RING is unsolicited, not a final", "RING", "info"),
    // ---- +CREG ----
    ("MM CREG=1 solicited", "+CREG: 1,3", "reg:stat=3 mode=1 area=- cell=- act=- rac=-"),
    ("MM CREG=1 unsolicited", "+CREG: 3", "reg:stat=3 mode=- area=- cell=- act=- rac=-"),
    ("MM CREG=1 unsolicited, stat 11 (RLOS)", "+CREG: 11", "reg:stat=11 mode=- area=- cell=- act=- rac=-"),
    ("MM Sierra Mercury CREG=2 solicited", "+CREG: 1,1,84CD,00D30173", "reg:stat=1 mode=1 area=84CD cell=00D30173 act=- rac=-"),
    ("MM Sierra Mercury CREG=2 unsolicited", "+CREG: 1,84CD,00D30156", "reg:stat=1 mode=- area=84CD cell=00D30156 act=- rac=-"),
    ("MM CREG=2 unsolicited, stat 11 (issue 23)", "+CREG: 11,\"33FE\",\"a3fb477\"", "reg:stat=11 mode=- area=33FE cell=a3fb477 act=- rac=-"),
    ("MM Sony Ericsson K850i CREG=2 solicited", "+CREG: 2,1,\"CE00\",\"01CEAD8F\"", "reg:stat=1 mode=2 area=CE00 cell=01CEAD8F act=- rac=-"),
    ("MM Sony Ericsson K850i CREG=2 unsolicited", "+CREG: 1,\"CE00\",\"00005449\"", "reg:stat=1 mode=- area=CE00 cell=00005449 act=- rac=-"),
    ("MM Huawei E160G unregistered CREG=2", "+CREG: 2,0,00,0", "reg:stat=0 mode=2 area=00 cell=0 act=- rac=-"),
    ("MM Huawei E160G CREG=2 solicited", "+CREG: 2,1,8BE3,2BAF", "reg:stat=1 mode=2 area=8BE3 cell=2BAF act=- rac=-"),
    ("MM Huawei E160G CREG=2 unsolicited", "+CREG: 1,8BE3,2BAF", "reg:stat=1 mode=- area=8BE3 cell=2BAF act=- rac=-"),
    ("MM Novatel XU870 unregistered CREG=2", "+CREG: 2,,", "reg:stat=2 mode=- area=- cell=- act=- rac=-"),
    ("MM Iridium CREG=2 (zero-padded integers)", "+CREG:002,001,\"18d8\",\"ffff\"", "reg:stat=1 mode=2 area=18d8 cell=ffff act=- rac=-"),
    ("MM solicited CREG=2, no leading zeros", "+CREG:2,1,0001,0010", "reg:stat=1 mode=2 area=0001 cell=0010 act=- rac=-"),
    ("MM unsolicited CREG=2, no leading zeros", "+CREG: 1,0001,0010,0", "reg:stat=1 mode=- area=0001 cell=0010 act=0 rac=-"),
    ("MM unsolicited CREG=2, leading zeros", "+CREG: 001,\"0001\",\"0010\",000", "reg:stat=1 mode=- area=0001 cell=0010 act=0 rac=-"),
    ("MM unsolicited CREG=2, stat 10", "+CREG: 10,0001,0010,0", "reg:stat=10 mode=- area=0001 cell=0010 act=0 rac=-"),
    ("MM unsolicited CREG=2, stat 0011 zero-padded", "+CREG: 0011,\"0001\",\"0010\",000", "reg:stat=11 mode=- area=0001 cell=0010 act=0 rac=-"),
    ("MM u-blox TOBY-L2 solicited on LTE (SMS only)", "+CREG: 2,6,\"8B37\",\"0A265185\",7", "reg:stat=6 mode=2 area=8B37 cell=0A265185 act=7 rac=-"),
    ("MM u-blox TOBY-L2 unsolicited on LTE", "+CREG: 6,\"8B37\",\"0A265185\",7", "reg:stat=6 mode=- area=8B37 cell=0A265185 act=7 rac=-"),
    ("MM Sony-Ericsson MD400 CREG=2", "+CREG: 2,5,\"0502\",\"0404736D\"", "reg:stat=5 mode=2 area=0502 cell=0404736D act=- rac=-"),
    ("MM Samsung Wave S8500 CREG=2 (trailing vendor fields)", "+CREG: 2,1,000B,2816, B, C2816", "reg:stat=1 mode=2 area=000B cell=2816 act=- rac=-"),
    ("MM Samsung Wave S8500 CREG=2, stat 11", "+CREG: 2,11,003F,8FE3, B, C2816", "reg:stat=11 mode=2 area=003F cell=8FE3 act=- rac=-"),
    ("MM Qualcomm Gobi 1000 CREG=2 (spaces inside a field)", "+CREG: 2,1,  0 5, 2715", "reg:stat=1 mode=2 area=05 cell=2715 act=- rac=-"),
    // ---- +CGREG ----
    ("MM CGREG=1 solicited", "+CGREG: 1,3", "reg:stat=3 mode=1 area=- cell=- act=- rac=-"),
    ("MM CGREG=1 unsolicited", "+CGREG: 3", "reg:stat=3 mode=- area=- cell=- act=- rac=-"),
    ("MM Ericsson F3607gw CGREG=2 solicited", "+CGREG: 2,1,\"8BE3\",\"00002B5D\",3", "reg:stat=1 mode=2 area=8BE3 cell=00002B5D act=3 rac=-"),
    ("MM Ericsson F3607gw CGREG=2 unsolicited", "+CGREG: 1,\"8BE3\",\"00002B5D\",3", "reg:stat=1 mode=- area=8BE3 cell=00002B5D act=3 rac=-"),
    ("MM Sony-Ericsson MD400 CGREG=2 unsolicited", "+CGREG: 5,\"0502\",\"0404736D\",2", "reg:stat=5 mode=- area=0502 cell=0404736D act=2 rac=-"),
    ("MM Alcatel One-Touch X220D CGREG=2 (random spaces)", "+CGREG: 2,1, 81ED, 1A9CEB", "reg:stat=1 mode=2 area=81ED cell=1A9CEB act=- rac=-"),
    ("MM CGREG=2 unsolicited with RAC", "+CGREG: 1,\"1422\",\"00000142\",3,\"00\"", "reg:stat=1 mode=- area=1422 cell=00000142 act=3 rac=00"),
    ("MM CGREG=2 unsolicited with RAC, stat 11", "+CGREG: 11,\"B092\",\"00000697\",3,\"00\"", "reg:stat=11 mode=- area=B092 cell=00000697 act=3 rac=00"),
    ("MM solicited CGREG=2, stat 10", "+CGREG:2,10,ebbd,f025", "reg:stat=10 mode=2 area=ebbd cell=f025 act=- rac=-"),
    ("MM solicited CGREG=2, zero-padded stat 0011", "+CGREG:002,0011,\"0f0d\",\"14c3\"", "reg:stat=11 mode=2 area=0f0d cell=14c3 act=- rac=-"),
    ("MM Thuraya solicited CGREG=2", "+CGREG: 2, 1, \"0426\", \"F00F\"", "reg:stat=1 mode=2 area=0426 cell=F00F act=- rac=-"),
    ("MM Thuraya unsolicited CGREG=2", "+CGREG: 1, \"0426\", \"F00F\"", "reg:stat=1 mode=- area=0426 cell=F00F act=- rac=-"),
    // ---- +CEREG ----
    ("MM CEREG=1 solicited", "+CEREG: 1,3", "reg:stat=3 mode=1 area=- cell=- act=- rac=-"),
    ("MM CEREG=1 unsolicited", "+CEREG: 3", "reg:stat=3 mode=- area=- cell=- act=- rac=-"),
    ("MM CEREG=2 solicited", "+CEREG: 2,1, 1F00, 79D903 ,7", "reg:stat=1 mode=2 area=1F00 cell=79D903 act=7 rac=-"),
    ("MM CEREG=2 unsolicited", "+CEREG: 1, 1F00, 79D903 ,7", "reg:stat=1 mode=- area=1F00 cell=79D903 act=7 rac=-"),
    ("MM CEREG=2 solicited, stat 10", "+CEREG: 2,10,\"8d83\",\"671f98a\",7", "reg:stat=10 mode=2 area=8d83 cell=671f98a act=7 rac=-"),
    ("MM CEREG=2 solicited, stat 10, vendor RAC layout", "+CEREG: 2,10, 2CA8, 20 ,B5583D ,7", "reg:stat=10 mode=2 area=2CA8 cell=B5583D act=7 rac=20"),
    ("MM CEREG=2 unsolicited, stat 11, vendor RAC layout", "+CEREG: 11, 78FE, 20 ,14419E ,7", "reg:stat=11 mode=- area=78FE cell=14419E act=7 rac=20"),
    ("MM Altair LTE CEREG=2 solicited", "+CEREG: 1, 2, 0001, 00000100, 7", "reg:stat=2 mode=1 area=0001 cell=00000100 act=7 rac=-"),
    ("MM Altair LTE CEREG=2 searching URC (issue 23)", "+CEREG: 2, 0001, 00000100, 7", "reg:stat=2 mode=- area=0001 cell=00000100 act=7 rac=-"),
    ("MM Novatel LTE E362 CEREG=2 solicited (issue 23)", "+CEREG: 2,1, 1F00, 20 ,79D903 ,7", "reg:stat=1 mode=2 area=1F00 cell=79D903 act=7 rac=20"),
    ("MM Novatel LTE E362 CEREG=2 unsolicited", "+CEREG: 1, 1F00, 20 ,79D903 ,7", "reg:stat=1 mode=- area=1F00 cell=79D903 act=7 rac=20"),
    // ---- +C5GREG ----
    ("MM C5GREG=1 solicited", "+C5GREG: 1,3", "reg:stat=3 mode=1 area=- cell=- act=- rac=-"),
    ("MM C5GREG=1 solicited, stat 10", "+C5GREG: 1, 10", "reg:stat=10 mode=1 area=- cell=- act=- rac=-"),
    ("MM C5GREG=1 unsolicited", "+C5GREG: 3", "reg:stat=3 mode=- area=- cell=- act=- rac=-"),
    ("MM C5GREG=2 solicited (NR, allowed NSSAI)", "+C5GREG: 2,1,1F00,79D903,11,6,ABCDEF", "reg:stat=1 mode=2 area=1F00 cell=79D903 act=11 rac=-"),
    ("MM C5GREG=2 unsolicited", "+C5GREG: 1,1F00,79D903,11,6,ABCDEF", "reg:stat=1 mode=- area=1F00 cell=79D903 act=11 rac=-"),
    // ---- +CSQ ----
    ("MM gsm-port.conf: a recorded GSM port", "+CSQ: 17,99", "csq:17,99"),
    ("Quectel BG96 (Eseye developer guide), AT+CSQ example", "+CSQ: 3,99", "csq:3,99"),
    ("Motorola G20 AT reference, AT+CSQ example (space after comma)", "+CSQ: 31, 99", "csq:31,99"),
    ("27.007 8.5: 99,99 = not known (no signal yet)", "+CSQ: 99,99", "csq:99,99"),
    // ---- +COPS ----
    ("MM COPS read, manual, long name", "+COPS: 1,0,\"CHINA MOBILE\"", "cops:1,CHINA MOBILE,-"),
    ("MM COPS read, manual, long name, E-UTRAN", "+COPS: 1,0,\"CHINA MOBILE\",7", "cops:1,CHINA MOBILE,7"),
    ("MM COPS read, numeric name", "+COPS: 1,2,\"46000\"", "cops:1,46000,-"),
    ("MM COPS read, numeric name, E-UTRAN", "+COPS: 1,2,\"46000\",7", "cops:1,46000,7"),
    ("27.007 7.3: not registered, automatic", "+COPS: 0", "cops:0,-,-"),
    // ---- +CPIN ----
    ("Telit HSPA+ AT reference, AT+CPIN? example", "+CPIN: READY", "cpin:READY"),
    ("MM CPIN: SIM PIN", "+CPIN: SIM PIN", "cpin:SIM PIN"),
    ("MM CPIN: SIM PUK2", "+CPIN: SIM PUK2", "cpin:SIM PUK2"),
    ("MM CPIN: quoted SIM PIN", "+CPIN: \"SIM PIN\"", "cpin:SIM PIN"),
    ("MM CPIN: PH-NET PIN (network lock)", "+CPIN: PH-NET PIN", "cpin:PH-NET PIN"),
];
